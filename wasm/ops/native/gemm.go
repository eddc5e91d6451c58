package native

import (
	"sync"
)

// Blocked SGEMM. C[m,n] = bias + A[m,k] @ B[k,n], with A packed into
// strips of mr rows (k-major, zero padded). B (the weights, row-major [k,n]
// because the graph pre-transposes them at load) is read in place when few
// strips share each panel, so a weight matrix is not copied per call, and
// the kernel prefetches the next panel while it computes; otherwise (tall
// A, transposed B, right-edge panels) each kc x nr panel is packed first.
// The micro-kernel accumulates an mr x nr tile over one k-block of kc.

// zeroRow is the bias of a product without one, for the strips kernels.
var zeroRow [32]float32

// epiPanels is how many column panels a product's epilogue (gate,
// residual) covers at a time: 128 columns of one strip block stay in L1.
const epiPanels = 8

// mcMax bounds the rows processed per pass over B, so the packed A block
// (mcMax x kc) stays in L2 when m is large (big batches).
const mcMax = 400

// microKernel accumulates one tile: for r < mr, j < nr:
// c[r*ldc+j] += sum_p a[r*lda+p*astep] * b[p*ldb+j], p < k.
// A is packed (lda 1, astep mr) or read in place from a row-major matrix
// (lda its row length, astep 1). pf, if not nil, is the next B panel (row
// stride ldb) for the kernel to prefetch while it computes.
type microKernel func(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32)

// stripsKernel is microKernel over strips consecutive full strips: strip s
// reads A at a[s*astride:] and accumulates into c[s*cstride:]; or, when
// bias is not nil (nr floats), sets c to bias + the sum without reading it.
type stripsKernel func(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, pf *float32, strips, astride, cstride int, bias []float32)

// gemmKernel is a micro-kernel with its tile shape and k-block size.
type gemmKernel struct {
	name string
	fn   microKernel
	// strips, if set, runs fn over several strips in one call (the
	// per-call cost was ~4 % of a ViT forward).
	strips stripsKernel
	mr, nr int
	// kc bounds a k-block so a kc x nr panel of B stays in L1.
	kc int
	// pack copies k full rows of nr floats (source row stride ld) to a
	// contiguous panel.
	pack func(k int, src []float32, ld int, dst []float32)
	// alt, if set, is a kernel with fewer rows and the same nr and kc (so
	// the same packed B), used when it pads m to noticeably fewer rows.
	alt *gemmKernel
}

// forRows returns the kernel to use for an m-row product: kern, or its
// alt when that computes at least 4% fewer padded rows.
func (kern *gemmKernel) forRows(m int) gemmKernel {
	a := kern.alt
	if a == nil || a.nr != kern.nr || a.kc != kern.kc {
		return *kern
	}
	pad := func(mr int) int { return (m + mr - 1) / mr * mr }
	if pad(a.mr)*100 <= pad(kern.mr)*96 {
		return *a
	}
	return *kern
}

// The portable kernel's tile.
const (
	mr = 6
	nr = 16
)

var genericKernel = gemmKernel{name: "generic", fn: kernelGeneric, mr: mr, nr: nr, kc: 256, pack: packRowsGeneric(nr)}

// kernel is the fastest micro-kernel for this CPU (chosen in init on amd64).
var kernel = genericKernel

// kernelGeneric is the portable micro-kernel: 2x4 register sub-tiles, so
// the 8 accumulators plus operands fit in 16 float registers on amd64 and
// the inner loop has few bounds checks. It ignores pf (Go cannot prefetch).
func kernelGeneric(k int, a []float32, lda, astep int, b []float32, ldb int, c []float32, ldc int, _ *float32) {
	if k == 0 {
		return
	}
	_ = a[(mr-1)*lda+(k-1)*astep]
	_ = b[(k-1)*ldb+nr-1]
	_ = c[(mr-1)*ldc+nr-1]
	for r := 0; r < mr; r += 2 {
		for j := 0; j < nr; j += 4 {
			var c00, c01, c02, c03, c10, c11, c12, c13 float32
			bo, ao0, ao1 := j, r*lda, (r+1)*lda
			for p := 0; p < k; p++ {
				bp := b[bo : bo+4 : bo+4]
				a0, a1 := a[ao0], a[ao1]
				ao0 += astep
				ao1 += astep
				b0, b1, b2, b3 := bp[0], bp[1], bp[2], bp[3]
				c00 += a0 * b0
				c01 += a0 * b1
				c02 += a0 * b2
				c03 += a0 * b3
				c10 += a1 * b0
				c11 += a1 * b1
				c12 += a1 * b2
				c13 += a1 * b3
				bo += ldb
			}
			c0 := c[r*ldc+j : r*ldc+j+4 : r*ldc+j+4]
			c0[0] += c00
			c0[1] += c01
			c0[2] += c02
			c0[3] += c03
			c1 := c[(r+1)*ldc+j : (r+1)*ldc+j+4 : (r+1)*ldc+j+4]
			c1[0] += c10
			c1[1] += c11
			c1[2] += c12
			c1[3] += c13
		}
	}
}

// scratch hands out temporary float32 buffers (packed operands, edge
// tiles) so steady-state matrix products do not allocate.
var scratch = sync.Pool{New: func() any { return new([]float32) }}

func getScratch(n int) *[]float32 {
	p := scratch.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

// gemmJob describes one product c = op(a) @ op(b) (+ bias).
type gemmJob struct {
	c, a, b []float32
	m, k, n int
	ta, tb  bool
	bias    []float32
	// bPanels: b is in the current kernel's panel layout (prepack.go).
	bPanels bool
	// The epilogue (ops.Fused.Linear), applied to each block of C once
	// complete: c·sigmoid(c) when gated, then + residual[m,n] if not nil.
	gated    bool
	residual []float32
}

// packA writes strips of mr rows of op(A), rows [i0, i1), k-major:
// dst[(s*k+p)*mr + r] = A(i0+s*mr+r, p), zero for rows past i1.
func packA(dst, a []float32, m, k, mr int, ta bool, i0, i1 int) {
	for s, i := 0, i0; i < i1; s, i = s+1, i+mr {
		strip := dst[s*k*mr : (s+1)*k*mr]
		rows := i1 - i
		if rows > mr {
			rows = mr
		}
		if ta {
			// A(i,p) = a[p*m+i]: each p gives mr consecutive values.
			for p := 0; p < k; p++ {
				d := strip[p*mr : p*mr+mr]
				src := a[p*m+i : p*m+i+rows]
				copy(d, src)
				for r := rows; r < mr; r++ {
					d[r] = 0
				}
			}
			continue
		}
		for r := 0; r < rows; r++ {
			src := a[(i+r)*k : (i+r+1)*k]
			for p, v := range src {
				strip[p*mr+r] = v
			}
		}
		for r := rows; r < mr; r++ {
			for p := 0; p < k; p++ {
				strip[p*mr+r] = 0
			}
		}
	}
}

// packRowsGeneric copies k rows of nr floats (row stride ld) to dst.
func packRowsGeneric(nr int) func(k int, src []float32, ld int, dst []float32) {
	return func(k int, src []float32, ld int, dst []float32) {
		for p := 0; p < k; p++ {
			copy(dst[p*nr:(p+1)*nr], src[p*ld:p*ld+nr])
		}
	}
}

// packB writes the kk x nr panel of op(B) at rows [k0, k0+kk), columns
// [j, j+cols) contiguously (row stride nr), zero padded past cols.
func packB(kern *gemmKernel, dst, b []float32, k, n, k0, kk, j, cols int, tb bool) {
	nr := kern.nr
	switch {
	case !tb && cols == nr:
		kern.pack(kk, b[k0*n+j:], n, dst)
	case !tb:
		for p := 0; p < kk; p++ {
			d := dst[p*nr : p*nr+nr]
			copy(d, b[(k0+p)*n+j:(k0+p)*n+j+cols])
			clear(d[cols:])
		}
	default:
		// b is [n,k]: B(p, x) = b[x*k+p]; each source row is contiguous
		// in p, so walk it and scatter with stride nr.
		for x := 0; x < cols; x++ {
			src := b[(j+x)*k+k0 : (j+x)*k+k0+kk]
			for p, v := range src {
				dst[p*nr+x] = v
			}
		}
		if cols < nr {
			for p := 0; p < kk; p++ {
				clear(dst[p*nr+cols : p*nr+nr])
			}
		}
	}
}

// gemm runs one product; threads goroutines share it by column panels (or
// by row strips when there are too few panels).
func (o *Ops) gemm(g gemmJob, threads int) {
	m, k, n := g.m, g.k, g.n
	c := g.c[:m*n]
	// C starts as the bias (or zero), set block by block just before the
	// first k-block accumulates into it, while it is in cache (one pass
	// over C before the product was ~2 % of a batch-1 forward). The
	// epilogue runs on the same blocks after the last k-block.
	initC := func(i0, i1, j0, j1 int) {
		for i := i0; i < i1; i++ {
			row := c[i*n+j0 : i*n+j1]
			if g.bias != nil {
				copy(row, g.bias[j0:j1])
			} else {
				clear(row)
			}
		}
	}
	// tmp holds j1-j0 floats (the gate's sigmoids).
	epilogue := func(i0, i1, j0, j1 int, tmp []float32) {
		for i := i0; i < i1; i++ {
			row := c[i*n+j0 : i*n+j1]
			if g.gated {
				gate(row, tmp)
			}
			if g.residual != nil {
				binVV(opAdd, row, row, g.residual[i*n+j0:i*n+j1])
			}
		}
	}
	if k == 0 || m == 0 || n == 0 {
		initC(0, m, 0, n)
		epilogue(0, m, 0, n, make([]float32, n))
		return
	}
	kern := kernel.forRows(m)
	mr, nr := kern.mr, kern.nr
	strips := (m + mr - 1) / mr
	// A is read in place when it is row-major; only a transposed A, and
	// the last strip when m is not a multiple of mr, are packed (the
	// kernel must not read rows past m).
	full := m / mr
	packed := 0 // first packed strip
	if !g.ta {
		packed = full
	}
	ap := getScratch((strips - packed) * mr * k)
	defer scratch.Put(ap)
	apack := *ap
	packA(apack, g.a, m, k, mr, g.ta, packed*mr, m)

	kc := kBlock(&kern, k)
	panels := (n + nr - 1) / nr
	// Row-major B panels are used in place when few strips reuse them:
	// their rows are N floats apart (768, 3072: L1 set conflicts) but L2
	// feeds the kernel well enough, and at 50 rows (ViT-B/32, batch 1)
	// packing measured 10-15% slower. Many strips amortise the copy.
	packAll := strips > 16

	run := func(p0, p1, s0, s1 int) {
		buf := getScratch(kc*nr + mr*nr + epiPanels*nr)
		defer scratch.Put(buf)
		bp, cEdge, tmp := (*buf)[:kc*nr], (*buf)[kc*nr:kc*nr+mr*nr], (*buf)[kc*nr+mr*nr:]
		epi := g.gated || g.residual != nil
		for sb := s0; sb < s1; sb += mcMax / mr {
			sbEnd := min(sb+mcMax/mr, s1)
			for k0 := 0; k0 < k; k0 += kc {
				kk := min(kc, k-k0)
				for jp := p0; jp < p1; jp++ {
					j := jp * nr
					cols := min(nr, n-j)
					i0, i1 := sb*mr, min(sbEnd*mr, m)
					// C's first k-block: the strips kernel sets its full
					// strips to the bias plus the sum (C is not read);
					// the rest starts as the bias here.
					var biasRow []float32
					if k0 == 0 {
						from := i0
						if kern.strips != nil && cols == nr {
							from = max(i0, min(full, sbEnd)*mr)
							biasRow = zeroRow[:nr]
							if g.bias != nil {
								biasRow = g.bias[j : j+nr]
							}
						}
						initC(from, i1, j, j+cols)
					}
					bpp, ldb := bp, nr
					var pf *float32 // next in-place panel, to prefetch
					switch {
					case g.bPanels:
						off := k0*n + j*kk // see packPanels
						bpp, ldb = g.b[off:off+kk*nr], nr
						// The next panel this part computes: the next
						// column, or its first column's next k-block (the
						// panel after this one belongs to another part
						// when p1 < panels).
						switch next := k0 + kk; {
						case jp+1 < p1:
							pf = &g.b[off+kk*nr]
						case next < k:
							pf = &g.b[next*n+p0*nr*min(kc, k-next)]
						}
					case packAll || g.tb || cols < nr:
						packB(&kern, bpp, g.b, k, n, k0, kk, j, cols, g.tb)
					default:
						bpp, ldb = g.b[k0*n+j:], n
						if j+2*nr <= n {
							pf = &g.b[k0*n+j+nr]
						}
					}
					s := sb
					if kern.strips != nil && cols == nr {
						// The full in-place strips, then the full packed
						// ones, one call each.
						if e := min(sbEnd, packed, full); s < e {
							kern.strips(kk, g.a[s*mr*k+k0:], k, 1, bpp, ldb, c[s*mr*n+j:], n, pf, e-s, mr*k, mr*n, biasRow)
							s = e
						}
						if e := min(sbEnd, full); s < e && s >= packed {
							off := (s - packed) * k * mr
							kern.strips(kk, apack[off+k0*mr:], 1, mr, bpp, ldb, c[s*mr*n+j:], n, pf, e-s, k*mr, mr*n, biasRow)
							s = e
						}
					}
					for ; s < sbEnd; s++ {
						i := s * mr
						rows := min(mr, m-i)
						var as []float32
						lda, astep := k, 1
						if s < packed {
							as = g.a[i*k+k0:]
						} else {
							off := (s - packed) * k * mr
							as, lda, astep = apack[off+k0*mr:off+(k0+kk)*mr], 1, mr
						}
						if rows == mr && cols == nr {
							kern.fn(kk, as, lda, astep, bpp, ldb, c[i*n+j:], n, pf)
							continue
						}
						clear(cEdge)
						kern.fn(kk, as, lda, astep, bpp, ldb, cEdge, nr, nil)
						for r := 0; r < rows; r++ {
							dst := c[(i+r)*n+j : (i+r)*n+j+cols]
							for x, v := range cEdge[r*nr : r*nr+cols] {
								dst[x] += v
							}
						}
					}
					// The epilogue, on epiPanels panels at a time (on one
					// the call overhead showed).
					if last := jp+1 == p1 || (jp+1-p0)%epiPanels == 0; epi && last && k0+kk == k {
						first := p0 + (jp-p0)/epiPanels*epiPanels // the group's first panel
						epilogue(i0, i1, first*nr, j+cols, tmp)
					}
				}
			}
		}
	}

	work := 2 * m * n * k
	if threads <= 1 || o.workers == nil || work < 1<<20 {
		run(0, panels, 0, strips)
		return
	}
	if panels >= 2*threads || panels >= strips {
		o.parallelFor(panels, work/panels, func(lo, hi int) { run(lo, hi, 0, strips) })
	} else {
		o.parallelFor(strips, work/strips, func(lo, hi int) { run(0, panels, lo, hi) })
	}
}
