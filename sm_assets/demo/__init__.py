"""The embedded fake AWS organization behind `sm-assets demo` and the tests (moto-based, no network)."""
