//! The values a stack holds as ELB spells them: scheme, address types, protocols, the
//! health-check port, a redirect's code. Each parses ELB's (and the annotations') spelling and
//! gives it back.

/// Where a load balancer faces: ELB's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scheme {
    Internal,
    InternetFacing,
}

impl Scheme {
    /// The annotation's, the class parameters' and `--default-load-balancer-scheme`'s spelling.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "internal" => Some(Self::Internal),
            "internet-facing" => Some(Self::InternetFacing),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::InternetFacing => "internet-facing",
        }
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A load balancer's address type, as ELB spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IpAddressType {
    Ipv4,
    Dualstack,
    DualstackWithoutPublicIpv4,
}

impl IpAddressType {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ipv4" => Some(Self::Ipv4),
            "dualstack" => Some(Self::Dualstack),
            "dualstack-without-public-ipv4" => Some(Self::DualstackWithoutPublicIpv4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Dualstack => "dualstack",
            Self::DualstackWithoutPublicIpv4 => "dualstack-without-public-ipv4",
        }
    }
}

/// Where ELB sends a target group's health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckPort {
    /// The port traffic goes to (ELB's `traffic-port`).
    TrafficPort,
    Number(u16),
}

impl CheckPort {
    /// From ELB's spelling: `traffic-port` or a port number.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "traffic-port" => Some(Self::TrafficPort),
            number => number.parse().ok().map(Self::Number),
        }
    }

    /// The port number, when it is one.
    pub fn number(self) -> Option<u16> {
        match self {
            Self::TrafficPort => None,
            Self::Number(n) => Some(n),
        }
    }
}

impl std::fmt::Display for CheckPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TrafficPort => f.write_str("traffic-port"),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The addresses a target group's targets have (`ipv4` or `ipv6`); a binding's too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetIpAddressType {
    Ipv4,
    Ipv6,
}

impl TargetIpAddressType {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "ipv4" => Some(Self::Ipv4),
            "ipv6" => Some(Self::Ipv6),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
        }
    }
}

/// A listener's, target group's or health check's protocol, as ELB spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Http,
    Https,
    Tcp,
    Tls,
    Udp,
    TcpUdp,
}

impl Protocol {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HTTP" => Some(Self::Http),
            "HTTPS" => Some(Self::Https),
            "TCP" => Some(Self::Tcp),
            "TLS" => Some(Self::Tls),
            "UDP" => Some(Self::Udp),
            "TCP_UDP" => Some(Self::TcpUdp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
            Self::Udp => "UDP",
            Self::TcpUdp => "TCP_UDP",
        }
    }

    /// TLS is terminated on the load balancer (HTTPS, TLS): the listener takes certificates.
    pub fn terminates_tls(self) -> bool {
        matches!(self, Self::Https | Self::Tls)
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ALB target group's protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    Http1,
    Http2,
    Grpc,
}

impl ProtocolVersion {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HTTP1" => Some(Self::Http1),
            "HTTP2" => Some(Self::Http2),
            "GRPC" => Some(Self::Grpc),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http1 => "HTTP1",
            Self::Http2 => "HTTP2",
            Self::Grpc => "GRPC",
        }
    }
}

/// A redirect's HTTP status, as ELB spells it: `HTTP_301` (permanent) or `HTTP_302` (found).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectCode {
    Http301,
    Http302,
}

impl RedirectCode {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "HTTP_301" => Some(Self::Http301),
            "HTTP_302" => Some(Self::Http302),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http301 => "HTTP_301",
            Self::Http302 => "HTTP_302",
        }
    }
}
