package loader

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/imgembed/imgembed/weights"
	"github.com/imgembed/imgembed/weights/safetensors"
)

// DefaultStreamWindow is Options.StreamWindow's default.
const DefaultStreamWindow = 32 << 20

// Streamed is a load whose tensors arrive while the model is built from
// them (Stream): each tensor's bytes are downloaded when the builder asks
// for them (or shortly before), read into the tensor that holds them and
// released, so that the whole file is never in memory at once.
//
// Use: read every tensor through Read and Release it once read, then call
// Finish (or Close when the build failed). A Streamed is not safe for
// concurrent use.
type Streamed struct {
	// File describes the file: its header, config and tensors. Its Data is
	// the file being assembled: read it through Read only.
	File *File
	d    *download // nil: the file is complete (from the cache)
	// keep: the parts are kept until Finish, which caches them (a cache
	// without a streaming writer needs the whole file).
	keep bool
	err  error // the first failure of Read

	// The cache entry being written (toCache): w (nil once it failed),
	// the needs in the entry's order, how many are written, and the
	// digests of the header and of each tensor written.
	w       CacheWriter
	inOrder []int
	written int
	sums    [][32]byte
}

// CacheWriter receives a cache entry as a stream (StreamCache): the bytes
// after its header in order (Write), then the header, which Commit puts in
// the space left for it at the start before the entry becomes visible.
// Abort drops the entry.
type CacheWriter interface {
	Write(b Bytes) error
	Commit(header Bytes) error
	Abort()
}

// StreamCache is an optional Cache method: an entry written as a stream,
// headerLen bytes left for the header. A streamed load (Stream) with such
// a cache writes each tensor once it is read and frees it; with a Cache
// without it, the whole download is kept until it is cached.
type StreamCache interface {
	Writer(key string, headerLen int64) (CacheWriter, error)
}

// Stream is Load for a builder that reads the tensors while they download.
// A valid cached copy is returned complete, as Load does. Otherwise Stream
// returns once the file's header is in: tensors are fetched as Read asks
// for them, with Range requests planned in the order the graphs read the
// tensors (Names), so that a file stored in another order costs requests,
// not memory (Options.StreamWindow bounds the bytes fetched ahead of their
// turn). With a cache, the parts are kept until Finish caches them.
//
// The weights are not checked for NaN and infinity (File.Unchecked): the
// reader's decoder must check them (weights.Decoder.CheckFinite). Finish
// checks those that were never read before anything is cached.
func Stream(source string, o Options) (*Streamed, error) {
	o = o.withDefaults()
	p := &progress{fn: o.Progress}
	if o.Env.Aborted() {
		return nil, newErr(Aborted, nil, "aborted before loading")
	}
	corrupt := o.DamagedCache
	if cr, ok := o.Cache.(CacheReader); ok && corrupt == nil {
		s, why, supported, err := streamCached(source, o, p, cr)
		if err != nil || s != nil {
			return s, err
		}
		corrupt = why
		if !supported {
			f, why, err := cached(source, o, p)
			if err != nil || f != nil {
				return &Streamed{File: f}, err
			}
			corrupt = why
		}
	} else if corrupt == nil {
		f, why, err := cached(source, o, p)
		if err != nil || f != nil {
			return &Streamed{File: f}, err
		}
		corrupt = why
	}
	sc, _ := o.Cache.(StreamCache)
	d, err := restarting(o, source, corrupt, func() (*download, error) {
		d := &download{o: o, src: source, p: p, size: -1, hl: -1, lazy: o.Cache == nil, toCache: sc != nil, reqDone: -1}
		return d, d.start()
	})
	if err != nil {
		return nil, err
	}
	f := &File{Data: d.parts, Header: d.out, Config: d.cfg, Text: d.text, Names: d.names,
		Stored: weights.NeededTensors(d.out, d.names), Unchecked: true}
	f.summarise()
	s := &Streamed{File: f, d: d, keep: o.Cache != nil && sc == nil}
	if sc != nil {
		s.entryOrder()
		s.openWriter(sc)
	}
	return s, nil
}

// openWriter starts the cache entry (toCache); on failure the load goes on
// without caching.
func (s *Streamed) openWriter(sc StreamCache) {
	d := s.d
	if d.digestAt < 9 {
		return
	}
	sum, err := digest(d.o.Cache, d.head0) // with the digest's placeholder
	if err != nil {
		return
	}
	w, err := sc.Writer(CacheKeyFor(d.src, d.o.Towers), d.head0.Len())
	if err != nil {
		return
	}
	s.w, s.sums = w, [][32]byte{sum}
}

// entryOrder lists the needs in the order of the assembled file (which
// flush writes and frees them in).
func (s *Streamed) entryOrder() {
	d := s.d
	s.inOrder = s.inOrder[:0]
	for i := range d.needs {
		s.inOrder = append(s.inOrder, i)
	}
	sort.Slice(s.inOrder, func(a, b int) bool { return d.needs[s.inOrder[a]].dst < d.needs[s.inOrder[b]].dst })
}

// CacheReader is an optional Cache method: an entry as a stream, so that a
// cache hit is read tensor by tensor while the model is built, like a
// download, instead of whole. supported is false when the cache cannot
// (then Get is used); b is nil on a miss. The entry's digest is checked
// as it streams: a damaged entry is found at the latest by
// Streamed.Finish, after the build, which is then thrown away (Damaged).
type CacheReader interface {
	Reader(key string) (b Body, supported bool)
}

// verifier checks a cache entry read as a stream against its digest.
type verifier struct {
	want   string     // the entry's MetaDigest
	header [32]byte   // SHA-256 of its header, the digest read as '0'
	sums   [][32]byte // of each need, set as it completes
	key    string
}

// damagedError: the cache entry a streamed load read was damaged; it has
// been deleted.
type damagedError struct{ cause error }

func (e *damagedError) Error() string { return "the cached copy was damaged: " + e.cause.Error() }
func (e *damagedError) Unwrap() error { return e.cause }

// Damaged reports whether err says that the cache entry a streamed load
// read was damaged (it has been deleted), and why: load again with
// Options.DamagedCache set to the cause, to download the model.
func Damaged(err error) (cause error, ok bool) {
	var de *damagedError
	if errors.As(err, &de) {
		return de.cause, true
	}
	return nil, false
}

// streamCached opens the cache entry of source as a stream (CacheReader):
// its header is read and checked (source, digest present) and the copy
// revalidated; the tensors follow as Read asks. A bad header or a changed
// file deletes the entry (why: the damage, nil for a change).
func streamCached(source string, o Options, p *progress, cr CacheReader) (s *Streamed, why error, supported bool, err error) {
	key := CacheKeyFor(source, o.Towers)
	body, supported := cr.Reader(key)
	if !supported || body == nil {
		return nil, nil, supported, nil
	}
	d := &download{o: o, src: source, p: p, size: -1, hl: -1, toCache: true, reqDone: -1, full: true, responses: 1, rangeEnd: -1}
	d.open(&Response{Status: 200, Header: func(string) string { return "" }, Body: body}, 0)
	bad := func(why error) (*Streamed, error, bool, error) {
		d.closeCur()
		o.Cache.Delete(key)
		return nil, why, true, nil
	}
	for d.cur != nil && d.needs == nil {
		if err := d.pump(); err != nil {
			if CodeOf(err) == Aborted {
				return nil, nil, true, err
			}
			return bad(err)
		}
	}
	if d.needs == nil {
		return bad(d.headerMissing())
	}
	meta := d.srcMeta
	if meta[MetaSource] != source {
		return bad(fmt.Errorf("the entry is for %q", meta[MetaSource]))
	}
	want := meta[MetaDigest]
	if _, err := hex.DecodeString(want); err != nil || len(want) != 64 {
		return bad(fmt.Errorf("no valid %s in the entry", MetaDigest))
	}
	hdr := append([]byte(nil), d.head[:8+d.hl]...)
	i := bytes.Index(hdr[8:], []byte(`"`+want+`"`))
	if i < 0 {
		return bad(fmt.Errorf("%s not found in the header bytes", MetaDigest))
	}
	copy(hdr[8+i+1:], digestPlaceholder)
	d.verify = &verifier{want: want, header: sha256.Sum256(hdr), sums: make([][32]byte, len(d.needs)), key: key}
	// Tensors the prefix already completed were fed before verify was set.
	for j := range d.needs {
		if n := &d.needs[j]; n.info.Len() > 0 && n.filled == n.info.Len() {
			sum, err := digest(o.Cache, d.parts.bufs[n.part])
			if err != nil {
				return bad(err)
			}
			d.verify.sums[j] = sum
		}
	}
	if !o.NoRevalidate && changed(o, source, meta[MetaETag]) {
		d.closeCur()
		o.Cache.Delete(key)
		return nil, nil, true, nil
	}
	f := &File{Data: d.parts, Header: d.out, Config: d.cfg, Text: d.text, Names: d.names,
		Stored: weights.NeededTensors(d.out, d.names), Unchecked: true, FromCache: true}
	f.summarise()
	s = &Streamed{File: f, d: d}
	s.entryOrder()
	return s, nil, true, nil
}

// checkEntry compares a streamed cache entry's digest with its header's.
func (s *Streamed) checkEntry() error {
	v := s.d.verify
	h := sha256.New()
	h.Write(v.header[:])
	for i := range s.d.needs { // in the entry's order
		if s.d.needs[i].info.Len() > 0 {
			h.Write(v.sums[i][:])
		}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != v.want {
		return fmt.Errorf("%w: the entry hashes to %s, its header says %s", errDigest, got[:16], v.want[:16])
	}
	return nil
}

// Failed ends a load whose build failed with err and returns the error to
// report: when the bytes came from a cache entry (read as a stream), the
// entry is deleted and the error is Damaged (unless the load was aborted),
// so that the caller loads again from the network.
func (s *Streamed) Failed(err error) error {
	s.Close()
	if s.d == nil || s.d.verify == nil || s.d.o.Env.Aborted() || CodeOf(err) == Aborted {
		return err
	}
	s.d.o.Cache.Delete(s.d.verify.key)
	return &damagedError{err}
}

// flush writes the tensors that are next in the entry's order and read,
// and frees them; with all, every tensor left (downloading those never
// read, and checking them for NaN and infinity: the reader's decoder
// checked the others).
func (s *Streamed) flush(all bool) error {
	d := s.d
	var scratch []byte
	for ; s.written < len(s.inOrder); s.written++ {
		i := s.inOrder[s.written]
		n := &d.needs[i]
		if n.info.Len() == 0 {
			continue
		}
		if !n.released {
			if !all {
				return nil
			}
			if err := s.await(i); err != nil {
				return err
			}
			if scratch == nil {
				scratch = make([]byte, finiteChunk)
			}
			if err := checkFiniteTensor(s.File, n.info.Name, scratch); err != nil {
				return err
			}
			n.released = true
		}
		part := d.parts.bufs[n.part]
		if s.w != nil {
			sum, err := digest(d.o.Cache, part)
			if err == nil {
				err = s.w.Write(part)
			}
			if err != nil {
				s.w.Abort()
				s.w = nil
			}
			s.sums = append(s.sums, sum)
		}
		if b := d.parts.Release(n.dst); b != nil {
			d.discard(b)
		}
	}
	return nil
}

// commit completes the cache entry: the digest goes into the header, which
// the writer puts at the start.
func (s *Streamed) commit() {
	d := s.d
	if s.w == nil {
		return
	}
	h := sha256.New()
	for _, sum := range s.sums {
		h.Write(sum[:])
	}
	hexSum := hex.EncodeToString(h.Sum(nil))
	d.head0.PutGo(d.digestAt, []byte(hexSum))
	d.out.Metadata[MetaDigest] = hexSum
	if err := s.w.Commit(d.head0); err != nil {
		s.w.Abort()
	}
	s.w = nil
}

// Changed reports whether err says that the file changed on the server
// while it was streamed: the caller may start the load over (once).
func Changed(err error) bool {
	var ch *changedError
	return errors.As(err, &ch)
}

// Read copies [off, off+len(p)) of the file (offsets of File.Header) into
// p, downloading what is missing first.
func (s *Streamed) Read(p []byte, off int64) error {
	if s.d == nil {
		s.File.Data.CopyTo(p, off)
		return nil
	}
	if s.err != nil {
		return s.err
	}
	if err := s.read(p, off); err != nil {
		s.err = err
		s.d.closeCur()
		return err
	}
	return nil
}

// Err is the first error Read returned: the cause of a failed build (a
// decoder may wrap it without its code), nil if none.
func (s *Streamed) Err() error { return s.err }

func (s *Streamed) read(p []byte, off int64) error {
	d := s.d
	end := off + int64(len(p))
	for _, i := range d.byDst(off, end) {
		n := &d.needs[i]
		if n.released {
			return fmt.Errorf("loader: %s read after its release", n.info.Name)
		}
		if err := s.await(i); err != nil {
			return err
		}
		if !d.lazy {
			continue
		}
		// The overlap of [off, end) with the tensor, from its views.
		a, b := max(off, n.dst), min(end, n.dst+n.info.Len())
		copyViews(n.views, p[a-off:b-off], a-n.dst)
	}
	if !d.lazy {
		d.parts.CopyTo(p, off)
	}
	return nil
}

// copyViews copies [at, at+len(dst)) of the concatenation of views.
func copyViews(views []Bytes, dst []byte, at int64) {
	for _, v := range views {
		l := v.Len()
		if at >= l {
			at -= l
			continue
		}
		k := min(int64(len(dst)), l-at)
		v.CopyTo(dst[:k], at)
		dst, at = dst[k:], 0
		if len(dst) == 0 {
			return
		}
	}
}

// Held is how many bytes of tensors the load holds: received and not yet
// released by the reader (with a cache, everything received).
func (s *Streamed) Held() int64 {
	if s.d == nil {
		return 0
	}
	var n int64
	for i := range s.d.needs {
		if nd := &s.d.needs[i]; !nd.released || s.keep {
			n += nd.filled
		}
	}
	return n
}

// Release says that the tensor at offset off (File.Header's) has been
// read. It returns its part when that part is free now (for a host that
// frees memory explicitly), else nil.
func (s *Streamed) Release(off int64) Buffer {
	if s.d == nil || s.keep {
		return nil
	}
	if s.d.toCache {
		for _, i := range s.d.byDst(off, off+1) {
			s.d.needs[i].released = true
		}
		if err := s.flush(false); err != nil && s.err == nil {
			s.err = err
		}
		return nil
	}
	for _, i := range s.d.byDst(off, off+1) {
		n := &s.d.needs[i]
		if n.released {
			continue
		}
		n.released = true
		for _, r := range n.refs {
			if r.users--; r.users == 0 {
				s.d.discard(r.c)
			}
		}
		n.views, n.refs = nil, nil
	}
	if s.d.lazy {
		return nil
	}
	b := s.d.parts.Release(off)
	if _, lazy := b.(lazyPart); lazy {
		return nil
	}
	return b
}

// Finish ends the load once the model is built: with a cache, the tensors
// not read yet are downloaded, the file is checked (NaN and infinity) and
// cached; the last progress report is made.
func (s *Streamed) Finish() error {
	d := s.d
	if d == nil {
		return nil
	}
	defer d.closeCur()
	if s.err != nil {
		return s.err
	}
	if d.verify != nil {
		// A cache entry: every tensor read (and hashed), then the digest.
		err := s.flush(true)
		if err == nil {
			err = s.checkEntry()
		}
		if err != nil {
			return s.Failed(err)
		}
	} else if d.toCache {
		if err := s.flush(true); err != nil {
			s.Close()
			return err
		}
		s.commit()
	}
	if s.keep {
		for i := range d.needs {
			if err := s.await(i); err != nil {
				return err
			}
		}
		if err := checkFinite(s.File); err != nil {
			return err
		}
		if err := d.seal(); err == nil {
			d.o.Cache.Put(CacheKeyFor(d.src, d.o.Towers), d.parts)
		}
	}
	d.p.final()
	return nil
}

// Close abandons the download (the build failed or was aborted) and the
// cache entry being written, if any.
func (s *Streamed) Close() {
	if s.d != nil {
		s.d.closeCur()
	}
	if s.w != nil {
		s.w.Abort()
		s.w = nil
	}
}

// await reads responses until need i is complete, asking for the next
// planned range whenever no response is open.
func (s *Streamed) await(i int) error {
	d := s.d
	n := &d.needs[i]
	for n.filled < n.info.Len() {
		if d.o.Env.Aborted() {
			d.closeCur()
			return newErr(Aborted, nil, "aborted")
		}
		if d.cur != nil {
			if err := d.pump(); err != nil {
				return naming(err, d.src)
			}
			if d.cur == nil && !d.full && d.reqDone >= 0 && d.neededDone() == d.reqDone {
				return d.fail(DownloadFailed, nil, "the response for bytes %d-%d of %s brought none of them", d.reqFrom, d.rangeEnd-1, d.src)
			}
			continue
		}
		if d.full {
			// The server sent the whole file and it ended before the tensor.
			missing := n.info.Len() - n.filled
			if d.bodyPos < d.dataEnd && (d.size < 0 || d.size >= d.dataEnd) {
				return newErr(DownloadFailed, io.ErrUnexpectedEOF, "%s ended after %d bytes, %d bytes of %s missing", d.src, d.bodyPos, missing, n.info.Name)
			}
			return newErr(InvalidModel, safetensors.ErrTruncated, "%d bytes of %s in %s are missing", missing, n.info.Name, d.src)
		}
		from, to := d.nextRange(i, s.window())
		resp, off, err := d.request(from, to)
		if Changed(err) {
			return err
		}
		if err != nil {
			return naming(err, d.src)
		}
		d.reqFrom, d.reqDone = from, d.neededDone()
		d.open(resp, off)
	}
	return nil
}

func (s *Streamed) window() int64 {
	if s.keep {
		// Everything is kept for the cache anyway: fetch in file order.
		return 1 << 62
	}
	return s.d.o.StreamWindow
}

// readHeader reads the response resp (from offset off) until the header
// is planned or the response ends.
func (d *download) readHeader(resp *Response, off int64) error {
	d.open(resp, off)
	for d.cur != nil && d.needs == nil {
		if err := d.pump(); err != nil {
			return err
		}
	}
	if d.needs == nil && d.full {
		return d.headerMissing()
	}
	return nil
}

// start makes the first requests, up to the header: the needs are planned
// (d.needs set) and the response that brought the header's end may still
// be open (d.cur).
func (d *download) start() error {
	resp, off, err := d.request(0, d.o.PrefixSize)
	if err != nil {
		return err
	}
	if err := d.readHeader(resp, off); err != nil {
		return err
	}
	for d.needs == nil {
		if d.hl < 0 {
			return d.fail(InvalidModel, safetensors.ErrTruncated, "%s is shorter than 8 bytes", d.src)
		}
		have := int64(len(d.head))
		if d.size >= 0 && 8+d.hl > d.size {
			return newErr(InvalidModel, safetensors.ErrTruncated, "header of %d bytes does not fit in the %d-byte file %s", d.hl, d.size, d.src)
		}
		resp, off, err := d.request(have, 8+d.hl)
		if err != nil {
			return err
		}
		if err := d.readHeader(resp, off); err != nil {
			return err
		}
		if int64(len(d.head)) == have && d.needs == nil {
			d.closeCur()
			return d.fail(DownloadFailed, nil, "no progress reading the header of %s", d.src)
		}
	}
	return nil
}

func (d *download) headerMissing() error {
	if d.hl < 0 {
		return newErr(InvalidModel, safetensors.ErrTruncated, "%s ends after %d bytes, inside the header length", d.src, len(d.head))
	}
	return newErr(InvalidModel, safetensors.ErrTruncated, "%s ends after %d bytes, inside the %d-byte header", d.src, len(d.head), d.hl)
}

// byDst returns the needs whose bytes in the assembled file overlap
// [from, to).
func (d *download) byDst(from, to int64) []int {
	var out []int
	for i := range d.needs {
		n := &d.needs[i]
		if l := n.info.Len(); l > 0 && n.dst < to && n.dst+l > from {
			out = append(out, i)
		}
	}
	return out
}

// readOrder lists the needs (sorted by source offset) in the order the
// graphs read them: names in turn, an int8 tensor's scales just before it.
func readOrder(needs []need, names []string) []int {
	at := make(map[string]int, len(needs))
	for i := range needs {
		at[needs[i].info.Name] = i
	}
	order := make([]int, 0, len(needs))
	seen := make([]bool, len(needs))
	for _, name := range readNames(names) {
		if i, ok := at[name]; ok && !seen[i] {
			seen[i] = true
			order = append(order, i)
		}
	}
	for i := range needs { // anything else, in file order
		if !seen[i] {
			seen[i] = true
			order = append(order, i)
		}
	}
	for r, i := range order {
		needs[i].rank = r
	}
	return order
}

// readNames lists names in the order a weights.Decoder reads them: an
// int8 tensor's scales just before it (whether it has any or not).
func readNames(names []string) []string {
	out := make([]string, 0, 2*len(names))
	for _, name := range names {
		out = append(out, weights.ScaleName(name), name)
	}
	return out
}

// nextRange plans the next request while need want is incomplete and no
// response is open: a source range read in one go, chosen by simulating
// the reader (which takes the needs in d.order, releasing each once read)
// so that bytes that arrive ahead of their turn never exceed window. The
// range starts at the earliest missing need among those the reader takes
// next (up to window bytes ahead), so that small tensors stored before a
// large one come in the same request, unless that range would stop
// before want; then it starts at want.
func (d *download) nextRange(want int, window int64) (int64, int64) {
	ptr := d.needs[want].rank
	start := want
	var ahead int64
	for r := ptr; r < len(d.order) && ahead <= window; r++ {
		i := d.order[r]
		n := &d.needs[i]
		if n.filled >= n.info.Len() {
			continue
		}
		ahead += n.info.Len() - n.filled
		if i < start {
			start = i
		}
	}
	if start != want {
		if from, to, ok := d.simulate(start, want, window); ok {
			return from, to
		}
	}
	from, to, _ := d.simulate(want, want, window)
	return from, to
}

// simulate extends a range from need start through the needs that follow
// it in the file while the reader (at need want, in d.order) would hold at
// most window bytes that arrived ahead of their turn, and the gaps stay
// within MaxGap. ok says whether the range reaches want.
func (d *download) simulate(start, want int, window int64) (from, to int64, ok bool) {
	got := make([]bool, len(d.needs))
	var held int64 // bytes received ahead of the reader
	ptr := d.needs[want].rank
	for i := range d.needs {
		n := &d.needs[i]
		got[i] = n.filled >= n.info.Len()
		if got[i] && n.rank >= ptr && !n.released {
			held += n.info.Len()
		}
	}
	advance := func() {
		for ptr < len(d.order) && got[d.order[ptr]] {
			if n := &d.needs[d.order[ptr]]; !n.released {
				held -= n.info.Len()
			}
			ptr++
		}
	}
	advance()
	s := &d.needs[start]
	from = s.info.Begin + s.filled
	to = from
	for i := start; i < len(d.needs); i++ {
		n := &d.needs[i]
		if got[i] {
			if n.info.End-to > d.o.MaxGap { // not worth fetching again
				break
			}
			continue
		}
		if i != start && n.info.Begin-to > d.o.MaxGap {
			break
		}
		next := ptr < len(d.order) && d.order[ptr] == i
		if i != start && !next && held+n.info.Len() > window {
			break
		}
		got[i] = true
		held += n.info.Len()
		to = max(to, n.info.End)
		if i == want {
			ok = true
		}
		advance()
	}
	return from, to, ok
}

// withDefaults fills in Options' defaults.
func (o Options) withDefaults() Options {
	if o.PrefixSize <= 0 {
		o.PrefixSize = 64 << 10
	}
	if o.MaxGap < 0 {
		o.MaxGap = 0
	} else if o.MaxGap == 0 {
		o.MaxGap = 64 << 10
	}
	if o.StreamWindow <= 0 {
		o.StreamWindow = DefaultStreamWindow
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	return o
}
