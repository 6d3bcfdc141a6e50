# The two commands: `make run` serves on the embedded log; `make test` runs
# every test (it starts a real Kafka broker itself).
.PHONY: run test bench-ingest bench-pipeline bench-hubspot bench-soak bench-source bench-page kafka-start kafka-stop build

run:
	scripts/run.sh

test:
	scripts/test.sh

bench-ingest:
	scripts/bench-ingest.sh

bench-pipeline:
	scripts/bench-pipeline.sh

bench-hubspot:
	scripts/bench-hubspot.sh

bench-soak:
	scripts/bench-soak.sh

bench-source:
	scripts/bench-source.sh

bench-page:
	scripts/bench-page.sh

build:
	CGO_ENABLED=0 go build -o bin/switchyard ./cmd/switchyard

kafka-start:
	scripts/kafka.sh start

kafka-stop:
	scripts/kafka.sh stop
