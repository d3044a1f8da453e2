//! Loopback ports for the control plane. A port is free when the kernel hands it out for port 0;
//! it may be taken again before the child binds it, so callers retry when a child's log says
//! "address already in use" (see `process::log_says_address_in_use`). Ports handed out in this
//! process are remembered so that two sandboxes started at once never get the same one.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{LazyLock, Mutex};

use crate::error::{Context, Result};

static HANDED_OUT: LazyLock<Mutex<HashSet<u16>>> = LazyLock::new(|| Mutex::new(HashSet::new()));

pub fn free_loopback_port() -> Result<u16> {
    loop {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context(|| "asking the kernel for a free loopback port".to_string())?;
        let port = listener
            .local_addr()
            .context(|| "reading a bound port".to_string())?
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_the_same_port_twice() {
        let ports: HashSet<u16> = (0..50).map(|_| free_loopback_port().unwrap()).collect();
        assert_eq!(ports.len(), 50);
    }
}
