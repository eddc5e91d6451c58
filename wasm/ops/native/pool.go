package native

import (
	"sync"
)

// bufPool recycles float32 buffers by exact length. A ViT forward allocates
// the same few sizes over and over (activations of each layer), so an
// exact-size free list removes most allocation, zeroing, page faults and GC
// work (measured: the copies into fresh memory cost more than the
// elementwise arithmetic). At most poolMaxBytes stay parked.
type bufPool struct {
	mu    sync.Mutex
	free  map[int][][]float32
	bytes int
}

// poolMaxBytes bounds the parked memory: enough for the activations of a
// ViT-B forward at batch 8 (the largest are 400x3072 floats, 4.9 MB).
const poolMaxBytes = 96 << 20

// poolMinLen: smaller buffers are cheap to allocate and not worth a lock.
const poolMinLen = 1024

// get returns a buffer of length n with arbitrary contents.
func (p *bufPool) get(n int) []float32 {
	if n < poolMinLen {
		return make([]float32, n)
	}
	p.mu.Lock()
	if l := p.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		l[len(l)-1] = nil
		p.free[n] = l[:len(l)-1]
		p.bytes -= 4 * n
		p.mu.Unlock()
		return b
	}
	p.mu.Unlock()
	return make([]float32, n)
}

func (p *bufPool) put(b []float32) {
	n := cap(b)
	if n < poolMinLen {
		return
	}
	p.mu.Lock()
	if p.bytes+4*n <= poolMaxBytes {
		if p.free == nil {
			p.free = make(map[int][][]float32)
		}
		p.free[n] = append(p.free[n], b[:n])
		p.bytes += 4 * n
	}
	p.mu.Unlock()
}

func (p *bufPool) release() {
	p.mu.Lock()
	p.free, p.bytes = nil, 0
	p.mu.Unlock()
}
