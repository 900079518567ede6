"""The policy's rules as code, one module per rule id of POLICY.md, each citing the plan's clause."""
