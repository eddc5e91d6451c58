//go:build !amd64

package native

func kernels() map[string]microKernel { return nil }
