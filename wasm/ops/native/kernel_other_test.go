//go:build !amd64

package native

func kernels() []gemmKernel { return nil }
