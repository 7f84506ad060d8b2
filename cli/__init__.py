"""The x402-rails command line: conformance checks now, operator tools later."""
