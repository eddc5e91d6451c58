package native

import (
	"slices"
	"sync"
)

// bufPool recycles float32 buffers by capacity. A ViT forward allocates
// the same few sizes over and over (activations of each layer), so free
// lists remove most allocation, zeroing, page faults and GC work (measured:
// the copies into fresh memory cost more than the elementwise arithmetic).
// A request takes the smallest parked buffer of at least its length and at
// most twice it, so a smaller batch after a larger one (the tail of a
// photo set) reuses the larger batch's buffers instead of parking a second
// set. At most poolMaxBytes stay parked.
type bufPool struct {
	mu    sync.Mutex
	free  map[int][][]float32 // by capacity
	caps  []int               // the keys of free, ascending
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
	for i, _ := slices.BinarySearch(p.caps, n); i < len(p.caps) && p.caps[i] <= 2*n; i++ {
		c := p.caps[i]
		if l := p.free[c]; len(l) > 0 {
			b := l[len(l)-1]
			l[len(l)-1] = nil
			p.free[c] = l[:len(l)-1]
			p.bytes -= 4 * c
			p.mu.Unlock()
			return b[:n]
		}
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
		if _, ok := p.free[n]; !ok {
			i, _ := slices.BinarySearch(p.caps, n)
			p.caps = slices.Insert(p.caps, i, n)
		}
		p.free[n] = append(p.free[n], b[:n])
		p.bytes += 4 * n
	}
	p.mu.Unlock()
}

func (p *bufPool) release() {
	p.mu.Lock()
	p.free, p.caps, p.bytes = nil, nil, 0
	p.mu.Unlock()
}
