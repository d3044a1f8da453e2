//! The fake application of one pod: real HTTP on the pod's address at each container port, inside
//! the sandbox's network namespace. It answers 200 on every path unless the pod's behaviour says
//! otherwise, and names the pod in its body so a test can tell which pod answered.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::behaviour::Behaviour;
use super::echo::EchoBasic;
use crate::netns::PodNetwork;

/// Response header naming the pod that answered.
pub const POD_HEADER: &str = "x-sandbox-pod";

pub struct PodApp {
    task: tokio::task::JoinHandle<()>,
    /// True once the app's process is up: listening, or sleeping through its start delay.
    up: watch::Receiver<bool>,
}

impl PodApp {
    /// Starts serving after the behaviour's start delay. `identity` is `namespace/name`.
    pub fn start(
        network: Arc<PodNetwork>,
        ip: Ipv4Addr,
        ports: Vec<u16>,
        identity: String,
        behaviour: watch::Receiver<Behaviour>,
        echo: Option<Arc<EchoBasic>>,
    ) -> PodApp {
        let (up_sender, up) = watch::channel(false);
        let task = tokio::spawn(async move {
            let delay = behaviour.borrow().start_delay;
            if delay > Duration::ZERO {
                // A slow app's process is up but not listening: its probes fail meanwhile.
                up_sender.send_replace(true);
                tokio::time::sleep(delay).await;
            }
            let started = Instant::now();
            let mut servers = JoinSet::new();
            for port in ports {
                let addr = SocketAddr::from((ip, port));
                match network.bind(addr).await {
                    Ok(listener) => {
                        let app = AppIdentity {
                            pod: identity.clone(),
                            addr,
                            started,
                            behaviour: behaviour.clone(),
                            echo: echo.clone(),
                        };
                        servers.spawn(serve(listener, Arc::new(app)));
                    }
                    Err(err) => tracing::warn!(pod = %identity, %addr, "pod cannot listen: {err}"),
                }
            }
            up_sender.send_replace(true);
            while servers.join_next().await.is_some() {}
        });
        PodApp { task, up }
    }

    /// Waits until the app's process is up. An app without a start delay is up once it listens,
    /// so its container's first probe does not race the few milliseconds its sockets take to
    /// bind (and fail, then wait a whole probe period for the next).
    pub async fn wait_up(&self) {
        let mut up = self.up.clone();
        // An error means the app's task ended (aborted): nothing more to wait for.
        let _ = up.wait_for(|up| *up).await;
    }

    /// Stops listening and drops every open connection, like a process that exited.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PodApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct AppIdentity {
    pod: String,
    addr: SocketAddr,
    started: Instant,
    behaviour: watch::Receiver<Behaviour>,
    /// The conformance suite's backend, when the pod runs its image.
    echo: Option<Arc<EchoBasic>>,
}

/// Accepts connections until aborted; aborting drops the JoinSet, which aborts every connection.
async fn serve(listener: tokio::net::TcpListener, app: Arc<AppIdentity>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                connections.spawn(async move {
                    let service = service_fn(move |request| respond(app.clone(), request));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn respond(
    app: Arc<AppIdentity>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if let Some(echo) = &app.echo {
        let (parts, body) = echo.respond(&request).await.into_parts();
        return Ok(Response::from_parts(parts, Full::new(Bytes::from(body))));
    }
    let path = request.uri().path().to_string();
    let (status, delay) = {
        let behaviour = app.behaviour.borrow();
        (
            behaviour.status_for(&path, app.started.elapsed()),
            behaviour.response_delay,
        )
    };
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
    let body = format!(
        "pod={} addr={} path={} status={status}\n",
        app.pod, app.addr, path
    );
    let response = Response::builder()
        .status(status)
        .header(POD_HEADER, app.pod.as_str())
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)));
    Ok(response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))))
}
