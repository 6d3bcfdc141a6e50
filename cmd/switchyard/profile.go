package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles starts the profiles the environment asks for:
// SWITCHYARD_CPU_PROFILE names a file for a CPU profile of the whole run, and
// SWITCHYARD_ALLOC_PROFILE one for the allocations made during it, both
// written when the command returns (as `go tool pprof` reads them). The
// returned func writes them; it reports a failure on stderr and never
// changes the command's outcome.
func startProfiles(getenv func(string) string, stderr io.Writer) (stop func()) {
	cpuPath, allocPath := getenv("SWITCHYARD_CPU_PROFILE"), getenv("SWITCHYARD_ALLOC_PROFILE")
	var cpu *os.File
	if cpuPath != "" {
		f, err := os.Create(cpuPath)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "switchyard: SWITCHYARD_CPU_PROFILE: %v\n", err)
		} else {
			cpu = f
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				fmt.Fprintf(stderr, "switchyard: SWITCHYARD_CPU_PROFILE: %v\n", err)
			}
		}
		if allocPath != "" {
			if err := writeAllocProfile(allocPath); err != nil {
				fmt.Fprintf(stderr, "switchyard: SWITCHYARD_ALLOC_PROFILE: %v\n", err)
			}
		}
	}
}

func writeAllocProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC() // so the profile's in-use figures are up to date
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
