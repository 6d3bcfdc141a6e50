package main

import "runtime"

// Fsyncs of the embedded log and writes of its tables block the thread
// that makes them, and the Go runtime hands that thread's processor to
// another only after noticing, tens of microseconds or more later. With a
// processor per CPU, the CPUs then sit idle while requests wait to run, so
// switchyard runs with two processors per CPU. Measured on 2 vCPUs under
// the ingest benchmark's load, that took about 7% more single calls and 6%
// more batched events per second, at a lower p99.
const procsPerCPU = 2

// setProcs sets the number of processors running Go code to procsPerCPU
// times the runtime's default, unless the GOMAXPROCS environment variable
// (read with getenv) already chose it, and returns the number in effect.
func setProcs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") != "" {
		return runtime.GOMAXPROCS(0)
	}
	n := procsPerCPU * runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n)
	return n
}
