//! The contents of the container's /etc/hosts and /etc/resolv.conf.
//!
//! Both are generated per step and bind-mounted read-only (as BuildKit does), so a step sees
//! working name resolution but the files never end up in its layer.

use crate::executor::Network;

/// Where the host's resolver configuration is read from.
pub(super) const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Docker's fallback nameservers, used when the host has none a step could reach.
const DEFAULT_NAMESERVERS: &str = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n\
                                   nameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n";

/// /etc/hosts: loopback names plus the step's hostname.
pub(super) fn hosts(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost {hostname}\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\n\
         ff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n"
    )
}

/// /etc/resolv.conf from the host's (`host`, None when unreadable).
///
/// With the host network the host's file is used as it is: even a loopback resolver
/// (systemd-resolved's 127.0.0.53) is reachable there. In a network namespace of its own a
/// loopback nameserver is the container's own loopback, where nothing listens, so those
/// lines are dropped, and Docker's defaults are used if no nameserver remains.
pub(super) fn resolv_conf(host: Option<&str>, network: Network) -> String {
    let Some(host) = host else {
        return DEFAULT_NAMESERVERS.to_owned();
    };
    if network == Network::Host {
        return host.to_owned();
    }
    let mut out = String::new();
    let mut nameservers = 0;
    for line in host.lines() {
        if let Some(addr) = nameserver(line) {
            if is_loopback(addr) {
                continue;
            }
            nameservers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if nameservers == 0 {
        out.push_str(DEFAULT_NAMESERVERS);
    }
    out
}

fn nameserver(line: &str) -> Option<&str> {
    let mut words = line.split_whitespace();
    (words.next() == Some("nameserver"))
        .then(|| words.next())
        .flatten()
}

fn is_loopback(addr: &str) -> bool {
    // An IPv6 nameserver may carry a zone (`fe80::1%eth0`); loopback ones never do.
    addr.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_names_the_hostname() {
        assert!(hosts("box").starts_with("127.0.0.1\tlocalhost box\n::1\t"));
    }

    #[test]
    fn host_network_keeps_the_hosts_resolver() {
        let host = "nameserver 127.0.0.53\nsearch lan\n";
        assert_eq!(resolv_conf(Some(host), Network::Host), host);
    }

    #[test]
    fn no_network_drops_loopback_resolvers() {
        let out = resolv_conf(
            Some("nameserver 127.0.0.53\noptions edns0\n"),
            Network::None,
        );
        assert!(out.starts_with("options edns0\nnameserver 8.8.8.8\n"));
        let out = resolv_conf(Some("nameserver 10.0.0.1\nnameserver ::1\n"), Network::None);
        assert_eq!(out, "nameserver 10.0.0.1\n");
        assert_eq!(resolv_conf(None, Network::None), DEFAULT_NAMESERVERS);
    }
}
