"""Benchmarks for sm-assets: a cheap local fake AWS (`fake_aws_bench`) and the runner (`run_benchmark`)."""
