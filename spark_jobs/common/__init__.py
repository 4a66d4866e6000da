"""Code shared by the Spark jobs: session set-up, URIs and file I/O, CLI plumbing, schemas, pure logic."""
