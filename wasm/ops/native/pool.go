package native

import (
	"sync"
)

// bufPool recycles float32 buffers by exact length. A ViT forward allocates
// the same few sizes over and over (activations of each layer), so an
// exact-size free list removes most allocation and GC work. Each size keeps
// at most poolPerSize buffers so memory stays bounded.
type bufPool struct {
	mu   sync.Mutex
	free map[int][][]float32
}

const poolPerSize = 8

func (p *bufPool) get(n int) []float32 {
	p.mu.Lock()
	if l := p.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		p.free[n] = l[:len(l)-1]
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return make([]float32, n)
}

func (p *bufPool) put(b []float32) {
	n := cap(b)
	if n == 0 {
		return
	}
	p.mu.Lock()
	if p.free == nil {
		p.free = make(map[int][][]float32)
	}
	if l := p.free[n]; len(l) < poolPerSize {
		p.free[n] = append(l, b[:n])
	}
	p.mu.Unlock()
}
