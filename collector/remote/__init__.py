"""SSH-side collection: connections, quoted commands, tcpdump, logs, facts, and the fleet running them."""
