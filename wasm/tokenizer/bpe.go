package tokenizer

// byteToRune is GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for
// themselves, the others are shifted to U+0100 and up, so that every byte
// is one visible character.
var byteToRune = func() (m [256]rune) {
	n := rune(0)
	for b := range 256 {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			m[b] = rune(b)
		} else {
			m[b] = 256 + n
			n++
		}
	}
	return m
}()

type symbol struct {
	id         int32
	prev, next int32 // -1: none
	gone       bool
}

// cand is a possible merge of the symbol at pos with the one after it.
type cand struct {
	rank, pos, id int32
}

// candHeap is a binary min-heap by (rank, pos), written out rather than
// through container/heap, whose interface boxing doubles the cost of a
// megabyte-long piece.
type candHeap []cand

func (c cand) less(d cand) bool { return c.rank < d.rank || (c.rank == d.rank && c.pos < d.pos) }

func (h *candHeap) push(c cand) {
	q := append(*h, c)
	i := len(q) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].less(q[p]) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
	*h = q
}

func (h *candHeap) pop() cand {
	q := *h
	top := q[0]
	n := len(q) - 1
	q[0] = q[n]
	q = q[:n]
	h.down(q, 0)
	*h = q
	return top
}

func (h *candHeap) down(q candHeap, i int) {
	for {
		l := 2*i + 1
		if l >= len(q) {
			return
		}
		m := l
		if r := l + 1; r < len(q) && q[r].less(q[l]) {
			m = r
		}
		if !q[m].less(q[i]) {
			return
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
}

func (h *candHeap) init() {
	q := *h
	for i := len(q)/2 - 1; i >= 0; i-- {
		h.down(q, i)
	}
}

// word is BPE scratch space, reused across the pieces of one call.
type word struct {
	syms []symbol
	q    candHeap
}

// lookupSymbol is the vocabulary id of byte b's symbol, with the
// end-of-word suffix when last; -1 when missing and there is no unk token.
func (t *Tokenizer) lookupSymbol(b byte, last bool) int32 {
	s := t.byteSym[b]
	if last {
		s += t.suffix
	}
	if id, ok := t.vocab[s]; ok {
		return id
	}
	return t.unk
}

// bpe appends the ids of one pre-tokenised piece to ids: its UTF-8 bytes as
// byte symbols (the last with the end-of-word suffix), then merges applied
// lowest rank first, leftmost first on ties, as Hugging Face's BPE does. A
// heap keeps this O(n log n) in the piece's length.
func (t *Tokenizer) bpe(w *word, piece string, ids []int32) []int32 {
	if cap(w.syms) < len(piece) {
		w.syms = make([]symbol, 0, len(piece))
		w.q = make(candHeap, 0, len(piece))
	}
	w.syms = w.syms[:0]
	for i := 0; i < len(piece); i++ {
		id := t.byteID[piece[i]]
		if i == len(piece)-1 {
			id = t.byteEndID[piece[i]]
		}
		if id < 0 {
			continue
		}
		n := int32(len(w.syms))
		w.syms = append(w.syms, symbol{id: id, prev: n - 1, next: n + 1})
	}
	if len(w.syms) == 0 {
		return ids
	}
	w.syms[len(w.syms)-1].next = -1
	w.q = w.q[:0]
	for i := 0; i+1 < len(w.syms); i++ {
		if m, ok := t.merges.get(w.syms[i].id, w.syms[i+1].id); ok {
			w.q = append(w.q, cand{m.rank, int32(i), m.id})
		}
	}
	w.q.init()
	for len(w.q) > 0 {
		c := w.q.pop()
		cur := &w.syms[c.pos]
		if cur.gone || cur.next < 0 {
			continue
		}
		right := &w.syms[cur.next]
		// Stale: one side has merged since this candidate was queued.
		if m, ok := t.merges.get(cur.id, right.id); !ok || m.rank != c.rank || m.id != c.id {
			continue
		}
		cur.id = c.id
		right.gone = true
		cur.next = right.next
		if cur.next >= 0 {
			w.syms[cur.next].prev = c.pos
		}
		if cur.prev >= 0 {
			p := w.syms[cur.prev]
			if m, ok := t.merges.get(p.id, cur.id); ok {
				w.q.push(cand{m.rank, cur.prev, m.id})
			}
		}
		if cur.next >= 0 {
			if m, ok := t.merges.get(cur.id, w.syms[cur.next].id); ok {
				w.q.push(cand{m.rank, c.pos, m.id})
			}
		}
	}
	for i := int32(0); i >= 0; i = w.syms[i].next {
		ids = append(ids, w.syms[i].id)
	}
	return ids
}
