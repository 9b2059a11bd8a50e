"""Running commands on managed hosts, and the policy that decides whether they may run."""
