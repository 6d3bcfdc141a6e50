package main

import (
	"runtime"
	"testing"
)

func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(before)

	if got := setProcs(func(string) string { return "3" }); got != before || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("with GOMAXPROCS set, setProcs = %d and GOMAXPROCS is %d, want both unchanged at %d", got, runtime.GOMAXPROCS(0), before)
	}
	if got := setProcs(func(string) string { return "" }); got != 2*before || runtime.GOMAXPROCS(0) != 2*before {
		t.Fatalf("without GOMAXPROCS, setProcs = %d and GOMAXPROCS is %d, want both %d", got, runtime.GOMAXPROCS(0), 2*before)
	}
}
