//go:build !unix

package native

func cpuSeconds() float64 { return 0 }
