// The Gateway API conformance suite (sigs.k8s.io/gateway-api/conformance, unmodified) against
// lb-controller on the sandbox. Run by `lb-controller conformance` (crates/lab/src/conformance.rs),
// which starts the sandbox and the controller, creates the GatewayClass, and passes:
//
//	KUBECONFIG            the sandbox's API server
//	LB_SANDBOX_CONTROL    the AWS emulator's control API (host:port): where each load balancer's
//	                      listeners really listen (loopback ports), for the dialer below
//	GATEWAY_CLASS         the GatewayClass of lb-controller to test
//	SUPPORTED_FEATURES    comma-separated feature names (the profile's core ones are added)
//	SKIP_TESTS            comma-separated test short names to skip, each with its ALB limit in
//	                      docs/conformance/README.md
//	RUN_TEST              one test short name (optional)
//	ONLY_TESTS            comma-separated short names: every other test is skipped (optional)
//	REPORT                where to write the conformance report YAML (optional)
//	VERSION               the implementation version in the report
//	MAX_TIME_TO_CONSISTENCY  seconds the suite waits for three consistent answers
//
// The suite sends its requests to <Gateway status address>:<listener port>; on the sandbox those
// hostnames resolve nowhere and every listener is a loopback port of the emulator, so the only
// change from a real cluster is the dialer, which the suite's options allow (CustomDialContext).
// Nothing is sent outside 127.0.0.0/8.
package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/gateway-api/conformance"
	confv1 "sigs.k8s.io/gateway-api/conformance/apis/v1"
	"sigs.k8s.io/gateway-api/conformance/tests"
	"sigs.k8s.io/gateway-api/conformance/utils/roundtripper"
	"sigs.k8s.io/gateway-api/conformance/utils/suite"
	"sigs.k8s.io/gateway-api/pkg/features"
)

// listener is one entry of the emulator's GET /listeners.
type listener struct {
	DNSName      string `json:"dns_name"`
	Port         int    `json:"port"`
	LocalAddress string `json:"local_address"`
}

// localAddress is where the emulator serves "<dns name>:<port>".
func localAddress(control, addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	wanted, err := strconv.Atoi(port)
	if err != nil {
		return "", err
	}
	client := http.Client{Timeout: 5 * time.Second}
	response, err := client.Get("http://" + control + "/listeners")
	if err != nil {
		return "", err
	}
	defer response.Body.Close()
	var listeners []listener
	if err := json.NewDecoder(response.Body).Decode(&listeners); err != nil {
		return "", err
	}
	for _, l := range listeners {
		if strings.EqualFold(l.DNSName, host) && l.Port == wanted {
			return l.LocalAddress, nil
		}
	}
	return "", fmt.Errorf("no load balancer listener %s in the emulator", addr)
}

// dialer maps each load balancer address to the emulator's loopback listener, and refuses any
// address outside loopback (the sandbox's network rule).
func dialer(control string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		local, err := localAddress(control, addr)
		if err != nil {
			return nil, err
		}
		host, _, err := net.SplitHostPort(local)
		if err != nil {
			return nil, err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("refusing to dial %s: not a loopback address", local)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, local)
	}
}

func list(name string) []string {
	var out []string
	for _, item := range strings.Split(os.Getenv(name), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	opts := conformance.DefaultOptions(t)
	opts.GatewayClassName = os.Getenv("GATEWAY_CLASS")
	opts.ConformanceProfiles = []suite.ConformanceProfileName{suite.GatewayHTTPConformanceProfileName}
	for _, name := range list("SUPPORTED_FEATURES") {
		opts.SupportedFeatures = append(opts.SupportedFeatures, features.FeatureName(name))
	}
	opts.SkipTests = list("SKIP_TESTS")
	// A subset (CI's short run): every other test is skipped.
	if only := list("ONLY_TESTS"); len(only) > 0 {
		for _, test := range tests.ConformanceTests {
			if !slices.Contains(only, test.ShortName) {
				opts.SkipTests = append(opts.SkipTests, test.ShortName)
			}
		}
	}
	opts.RunTest = os.Getenv("RUN_TEST")
	opts.CleanupBaseResources = false
	// ELB's health-check timing is kept (a new target group's targets turn healthy after three
	// checks 15 s apart): the suite waits up to this long for three consistent answers instead
	// of its default 30 s.
	if seconds, err := strconv.Atoi(os.Getenv("MAX_TIME_TO_CONSISTENCY")); err == nil {
		opts.TimeoutConfig.MaxTimeToConsistency = time.Duration(seconds) * time.Second
	}
	opts.RoundTripper = &roundtripper.DefaultRoundTripper{
		Debug:             opts.Debug,
		TimeoutConfig:     opts.TimeoutConfig,
		CustomDialContext: dialer(os.Getenv("LB_SANDBOX_CONTROL")),
	}
	opts.Implementation = confv1.Implementation{
		Organization: "lb-controller",
		Project:      "lb-controller",
		URL:          "https://github.com/lb-controller/lb-controller",
		Version:      os.Getenv("VERSION"),
		Contact:      []string{"@lb-controller/maintainers"},
	}
	opts.ReportOutputPath = os.Getenv("REPORT")
	conformance.RunConformanceWithOptions(t, opts)
}
