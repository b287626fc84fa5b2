// Command verifier checks a Stele log directory with Go's reference transparency-log code,
// golang.org/x/mod/sumdb/note and golang.org/x/mod/sumdb/tlog, and the standard library only.
// It shares no code with Stele, so agreement means Stele speaks the C2SP formats as written.
//
//	verifier -log <data dir>/log -vkey <verifier key> [-proofs proofs.json]
//
// It opens the signed checkpoint, reads every entry bundle, rebuilds the whole tree with
// tlog.StoredHashes, compares the root with the signed one, compares every stored hash tile
// byte for byte with tlog.ReadTileData over its own hashes, checks Stele's proofs with
// tlog.CheckRecord / tlog.CheckTree, and prints its own proofs (tlog.ProveRecord /
// tlog.ProveTree) for Stele to check. Any disagreement exits with status 1.
//
// x/mod's TileHashReader is deliberately not used: Debian's version authenticates only the
// tiles on the path it needs, while this tool must vouch for every tile on disk.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const (
	tileHeight = 8
	tileWidth  = 1 << tileHeight
)

// Input: proofs produced by Stele's HTTP API (GET /v1/proofs/inclusion and /v1/proofs/consistency).
type inclusionIn struct {
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Proof    []string `json:"proof"`
}

type consistencyIn struct {
	From  int64    `json:"from"`
	To    int64    `json:"to"`
	Proof []string `json:"proof"`
}

type proofsIn struct {
	Inclusion   []inclusionIn   `json:"inclusion"`
	Consistency []consistencyIn `json:"consistency"`
}

// Output.
type inclusionOut struct {
	Index    int64    `json:"index"`
	Size     int64    `json:"size"`
	LeafHash string   `json:"leaf_hash"`
	Root     string   `json:"root"`
	Proof    []string `json:"proof"`
}

type consistencyOut struct {
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	RootFrom string   `json:"root_from"`
	RootTo   string   `json:"root_to"`
	Proof    []string `json:"proof"`
}

type summary struct {
	OK               bool              `json:"ok"`
	Origin           string            `json:"origin"`
	KeyName          string            `json:"key_name"`
	Size             int64             `json:"size"`
	Root             string            `json:"root"`
	Extensions       []string          `json:"extensions"`
	StoredHashes     int64             `json:"stored_hashes"`
	BundlesChecked   int               `json:"bundles_checked"`
	TilesChecked     map[string]int    `json:"tiles_checked"`
	TilesTotal       int               `json:"tiles_checked_total"`
	BeyondCheckpoint []string          `json:"beyond_checkpoint"`
	IgnoredFiles     []string          `json:"ignored_files"`
	ProofsChecked    map[string]int    `json:"proofs_checked"`
	Roots            map[string]string `json:"roots"`
	OwnInclusion     []inclusionOut    `json:"own_inclusion"`
	OwnConsistency   []consistencyOut  `json:"own_consistency"`
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "verifier: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// decodeHash accepts only canonical standard base64 of exactly 32 bytes.
func decodeHash(what, s string) tlog.Hash {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != tlog.HashSize || base64.StdEncoding.EncodeToString(b) != s {
		fail("%s: %q is not canonical base64 of a %d-byte hash", what, s, tlog.HashSize)
	}
	var h tlog.Hash
	copy(h[:], b)
	return h
}

func decodeProof(what string, p []string) []tlog.Hash {
	out := make([]tlog.Hash, len(p))
	for i, s := range p {
		out[i] = decodeHash(fmt.Sprintf("%s hash %d", what, i), s)
	}
	return out
}

func encodeProof(p []tlog.Hash) []string {
	out := make([]string, len(p))
	for i, h := range p {
		out[i] = b64(h)
	}
	return out
}

// c2spPath formats a tile path as c2sp.org/tlog-tiles does: tile/<L>/<N>[.p/<W>], with no
// height element (x/mod's Tile.Path writes tile/<H>/<L>/<N>).
func c2spPath(level string, n int64, w int) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n >= 1000 {
		n /= 1000
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	p := "tile/" + level + "/" + s
	if w != tileWidth {
		p += fmt.Sprintf(".p/%d", w)
	}
	return p
}

// parseC2SPPath is the strict inverse of c2spPath: it re-formats what it parsed and demands
// the same string, so non-canonical spellings (x000 groups, .p/256, leading zeros) are refused.
func parseC2SPPath(p string) (level string, n int64, w int, ok bool) {
	f := strings.Split(p, "/")
	if len(f) < 3 || f[0] != "tile" {
		return "", 0, 0, false
	}
	level = f[1]
	if level != "entries" {
		l, err := strconv.Atoi(level)
		if err != nil || l < 0 || l > 63 {
			return "", 0, 0, false
		}
	}
	rest := f[2:]
	w = tileWidth
	if len(rest) >= 2 && strings.HasSuffix(rest[len(rest)-2], ".p") {
		x, err := strconv.Atoi(rest[len(rest)-1])
		if err != nil || x < 1 || x >= tileWidth {
			return "", 0, 0, false
		}
		w = x
		rest = append(append([]string{}, rest[:len(rest)-2]...), strings.TrimSuffix(rest[len(rest)-2], ".p"))
	}
	for i, g := range rest {
		if i < len(rest)-1 {
			if !strings.HasPrefix(g, "x") {
				return "", 0, 0, false
			}
			g = g[1:]
		}
		if len(g) != 3 {
			return "", 0, 0, false
		}
		d, err := strconv.Atoi(g)
		if err != nil || n > (1<<62)/1000 {
			return "", 0, 0, false
		}
		n = n*1000 + int64(d)
	}
	if c2spPath(level, n, w) != p {
		return "", 0, 0, false
	}
	return level, n, w, true
}

// decodeBundle splits an entry bundle: each entry is a big-endian uint16 length, then the bytes.
func decodeBundle(path string, data []byte) [][]byte {
	var out [][]byte
	for off := 0; off < len(data); {
		if off+2 > len(data) {
			fail("%s: length prefix of entry %d at byte %d is cut off", path, len(out), off)
		}
		n := int(binary.BigEndian.Uint16(data[off:]))
		if off+2+n > len(data) {
			fail("%s: entry %d at byte %d declares %d bytes, only %d remain", path, len(out), off, n, len(data)-off-2)
		}
		out = append(out, data[off+2:off+2+n])
		off += 2 + n
	}
	return out
}

func encodeBundle(entries [][]byte) []byte {
	var b bytes.Buffer
	for _, e := range entries {
		var l [2]byte
		binary.BigEndian.PutUint16(l[:], uint16(len(e)))
		b.Write(l[:])
		b.Write(e)
	}
	return b.Bytes()
}

// parseCheckpoint reads the c2sp.org/tlog-checkpoint body by hand: origin, size, base64 root,
// then optional non-empty extension lines.
func parseCheckpoint(text string) (origin string, size int64, root tlog.Hash, ext []string) {
	if !strings.HasSuffix(text, "\n") {
		fail("checkpoint body does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 {
		fail("checkpoint body has %d lines, want at least 3 (origin, size, root)", len(lines))
	}
	origin = lines[0]
	if origin == "" {
		fail("checkpoint origin is empty")
	}
	s := lines[1]
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		fail("checkpoint size %q is not a canonical decimal number", s)
	}
	root = decodeHash("checkpoint root", lines[2])
	ext = lines[3:]
	for i, e := range ext {
		if e == "" {
			fail("checkpoint extension line %d is empty", i+1)
		}
	}
	return origin, n, root, ext
}

// memReader serves hashes from the slice in tlog's stored-hash order.
type memReader struct{ hashes *[]tlog.Hash }

func (r memReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(*r.hashes)) {
			return nil, fmt.Errorf("hash index %d not stored (have %d)", x, len(*r.hashes))
		}
		out[i] = (*r.hashes)[x]
	}
	return out, nil
}

type tileFile struct {
	rel   string
	level string
	n     int64
	w     int
}

func main() {
	logDir := flag.String("log", "", "the log directory (a Stele data directory's log/ folder)")
	vkey := flag.String("vkey", "", "verifier key, name+hash+base64 (as note.NewVerifier reads it)")
	proofsFile := flag.String("proofs", "", "optional JSON file of proofs produced by Stele")
	flag.Parse()
	if *logDir == "" || *vkey == "" {
		flag.Usage()
		os.Exit(2)
	}

	// 1. The signed checkpoint.
	v, err := note.NewVerifier(*vkey)
	if err != nil {
		fail("note.NewVerifier rejects the verifier key %q: %v", *vkey, err)
	}
	msg, err := os.ReadFile(filepath.Join(*logDir, "checkpoint"))
	if err != nil {
		fail("reading checkpoint: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		fail("note.Open: %v", err)
	}
	if len(n.Sigs) == 0 || n.Sigs[0].Name != v.Name() || n.Sigs[0].Hash != v.KeyHash() {
		fail("note.Open accepted the checkpoint without a signature by %s", v.Name())
	}
	origin, size, signedRoot, ext := parseCheckpoint(n.Text)

	// 2. Every file under tile/, classified by its C2SP path.
	var bundles, tiles []tileFile
	var ignored []string
	tileRoot := filepath.Join(*logDir, "tile")
	err = filepath.WalkDir(tileRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == tileRoot {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(*logDir, p)
		rel = filepath.ToSlash(rel)
		level, idx, w, ok := parseC2SPPath(rel)
		switch {
		case !ok:
			ignored = append(ignored, rel)
		case level == "entries":
			bundles = append(bundles, tileFile{rel, level, idx, w})
		default:
			tiles = append(tiles, tileFile{rel, level, idx, w})
		}
		return nil
	})
	if err != nil {
		fail("walking %s: %v", tileRoot, err)
	}
	bundleAt := map[[2]int64]tileFile{}
	for _, b := range bundles {
		bundleAt[[2]int64{b.n, int64(b.w)}] = b
	}

	// 3. Every entry up to the checkpoint size: the bundle of exactly the needed width, or the
	// full one. Entries must be read in order, since StoredHashes reads earlier hashes.
	read := func(t tileFile) []byte {
		data, err := os.ReadFile(filepath.Join(*logDir, filepath.FromSlash(t.rel)))
		if err != nil {
			fail("reading %s: %v", t.rel, err)
		}
		return data
	}
	var stored []tlog.Hash
	reader := memReader{&stored}
	entries := make([][]byte, 0, size)
	for bn := int64(0); bn*tileWidth < size; bn++ {
		need := size - bn*tileWidth
		if need > tileWidth {
			need = tileWidth
		}
		b, ok := bundleAt[[2]int64{bn, need}]
		if !ok {
			if b, ok = bundleAt[[2]int64{bn, tileWidth}]; !ok {
				fail("entry bundle %s is missing (checkpoint size %d)", c2spPath("entries", bn, int(need)), size)
			}
		}
		got := decodeBundle(b.rel, read(b))
		if len(got) != b.w {
			fail("%s holds %d entries, its path says %d", b.rel, len(got), b.w)
		}
		for _, e := range got[:need] {
			i := int64(len(entries))
			if want := tlog.StoredHashIndex(0, i); int64(len(stored)) != want {
				fail("internal: %d hashes stored before record %d, want %d", len(stored), i, want)
			}
			hs, err := tlog.StoredHashes(i, e, reader)
			if err != nil {
				fail("tlog.StoredHashes(%d): %v", i, err)
			}
			stored = append(stored, hs...)
			entries = append(entries, e)
		}
	}
	if int64(len(stored)) != tlog.StoredHashCount(size) {
		fail("internal: %d stored hashes for size %d, want %d", len(stored), size, tlog.StoredHashCount(size))
	}

	// rootAt is the RFC 6962 root: x/mod's TreeHash calls the empty tree all zeros, RFC 6962 SHA-256("").
	roots := map[int64]tlog.Hash{}
	rootAt := func(s int64) tlog.Hash {
		if s < 0 || s > size {
			fail("tree size %d is outside 0..%d", s, size)
		}
		if h, ok := roots[s]; ok {
			return h
		}
		h := tlog.Hash(sha256.Sum256(nil))
		if s > 0 {
			if h, err = tlog.TreeHash(s, reader); err != nil {
				fail("tlog.TreeHash(%d): %v", s, err)
			}
		}
		roots[s] = h
		return h
	}
	if got := rootAt(size); got != signedRoot {
		fail("the tree rebuilt from the entry bundles has root %s at size %d; the signed checkpoint says %s", b64(got), size, b64(signedRoot))
	}

	// 4. Every bundle file, including older partial widths, byte for byte against the entries.
	var beyond []string
	for _, b := range bundles {
		start := b.n * tileWidth
		covered := int64(b.w)
		if start+covered > size {
			// Entries past the checkpoint are not committed to by the signed root.
			beyond = append(beyond, b.rel)
			if start > size {
				start = size
			}
			covered = size - start
		}
		data := read(b)
		got := decodeBundle(b.rel, data)
		if len(got) != b.w {
			fail("%s holds %d entries, its path says %d", b.rel, len(got), b.w)
		}
		if want := encodeBundle(entries[start : start+covered]); !bytes.Equal(encodeBundle(got[:covered]), want) {
			fail("%s disagrees with the entries the signed root commits to", b.rel)
		}
	}

	// 5. Every hash tile at every level, byte for byte against tlog.ReadTileData over our hashes;
	// and every tile a C2SP client may ask for at this size must exist.
	tilesChecked := map[string]int{}
	have := map[string]bool{}
	for _, t := range tiles {
		have[t.rel] = true
		l, _ := strconv.Atoi(t.level)
		count := size >> (tileHeight * l) // hashes stored at this tile level
		start := t.n * tileWidth
		w := int64(t.w)
		if start+w > count {
			beyond = append(beyond, t.rel)
			w = count - start
			if w <= 0 {
				continue
			}
		}
		data := read(t)
		if len(data) != t.w*tlog.HashSize {
			fail("%s is %d bytes, want %d (%d hashes)", t.rel, len(data), t.w*tlog.HashSize, t.w)
		}
		want, err := tlog.ReadTileData(tlog.Tile{H: tileHeight, L: l, N: t.n, W: int(w)}, reader)
		if err != nil {
			fail("tlog.ReadTileData(%s): %v", t.rel, err)
		}
		if !bytes.Equal(data[:len(want)], want) {
			for i := 0; i < int(w); i++ {
				a, b := data[i*tlog.HashSize:(i+1)*tlog.HashSize], want[i*tlog.HashSize:(i+1)*tlog.HashSize]
				if !bytes.Equal(a, b) {
					fail("%s: hash %d is %s, the rebuilt tree has %s", t.rel, i, base64.StdEncoding.EncodeToString(a), base64.StdEncoding.EncodeToString(b))
				}
			}
		}
		tilesChecked[t.level]++
	}
	for l := 0; size>>(tileHeight*l) > 0; l++ {
		count := size >> (tileHeight * l)
		for tn := int64(0); tn*tileWidth < count; tn++ {
			w := count - tn*tileWidth
			if w > tileWidth {
				w = tileWidth
			}
			if p := c2spPath(strconv.Itoa(l), tn, int(w)); !have[p] {
				fail("tile %s is missing (checkpoint size %d)", p, size)
			}
		}
	}
	tilesTotal := 0
	for _, c := range tilesChecked {
		tilesTotal += c
	}

	// 6. Stele's proofs, checked by x/mod against roots x/mod computed.
	var in proofsIn
	if *proofsFile != "" {
		raw, err := os.ReadFile(*proofsFile)
		if err != nil {
			fail("reading %s: %v", *proofsFile, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fail("parsing %s: %v", *proofsFile, err)
		}
	}
	for _, p := range in.Inclusion {
		what := fmt.Sprintf("Stele's inclusion proof of %d in size %d", p.Index, p.Size)
		if p.Index < 0 || p.Index >= p.Size || p.Size > size {
			fail("%s: index or size out of range (log size %d)", what, size)
		}
		lh := decodeHash(what+": leaf_hash", p.LeafHash)
		if want := tlog.RecordHash(entries[p.Index]); lh != want {
			fail("%s: leaf_hash %s, but entry %d hashes to %s", what, b64(lh), p.Index, b64(want))
		}
		if err := tlog.CheckRecord(decodeProof(what, p.Proof), p.Size, rootAt(p.Size), p.Index, lh); err != nil {
			fail("%s: tlog.CheckRecord: %v", what, err)
		}
	}
	for _, p := range in.Consistency {
		what := fmt.Sprintf("Stele's consistency proof from %d to %d", p.From, p.To)
		if p.From < 0 || p.From > p.To || p.To > size {
			fail("%s: sizes out of range (log size %d)", what, size)
		}
		proof := decodeProof(what, p.Proof)
		if p.From == 0 || p.From == p.To {
			// RFC 9162: the proof is empty; x/mod's CheckTree does not take size 0.
			if len(proof) != 0 {
				fail("%s: must be empty, has %d hashes", what, len(proof))
			}
			rootAt(p.From)
			rootAt(p.To)
			continue
		}
		if err := tlog.CheckTree(proof, p.To, rootAt(p.To), p.From, rootAt(p.From)); err != nil {
			fail("%s: tlog.CheckTree: %v", what, err)
		}
	}

	// 7. x/mod's own proofs, for the same coordinates and a spread of edge cases, for Stele to check.
	type pair struct{ a, b int64 }
	var incl, cons []pair
	seen := map[pair]bool{}
	addIncl := func(i, s int64) {
		if i >= 0 && i < s && s <= size && !seen[pair{-1 - i, s}] {
			seen[pair{-1 - i, s}] = true
			incl = append(incl, pair{i, s})
		}
	}
	addCons := func(f, t int64) {
		if f >= 1 && f <= t && t <= size && !seen[pair{f, t}] {
			seen[pair{f, t}] = true
			cons = append(cons, pair{f, t})
		}
	}
	for _, p := range in.Inclusion {
		addIncl(p.Index, p.Size)
	}
	for _, p := range in.Consistency {
		addCons(p.From, p.To)
	}
	edges := []int64{1, 2, 3, 255, 256, 257, 511, 512, 65535, 65536, 65537, size / 3, size / 2, size - 1, size}
	for _, s := range edges {
		addIncl(0, s)
		addIncl(s-1, s)
		addIncl(s/2, s)
		addIncl(s-1, size)
		addCons(s, size)
		addCons(s, s+1)
		addCons(s, 2*s)
	}
	sum := summary{
		OK: true, Origin: origin, KeyName: v.Name(), Size: size, Root: b64(signedRoot), Extensions: ext,
		StoredHashes: int64(len(stored)), BundlesChecked: len(bundles), TilesChecked: tilesChecked, TilesTotal: tilesTotal,
		BeyondCheckpoint: beyond, IgnoredFiles: ignored,
		ProofsChecked: map[string]int{"inclusion": len(in.Inclusion), "consistency": len(in.Consistency)},
		Roots:         map[string]string{},
		OwnInclusion:  []inclusionOut{}, OwnConsistency: []consistencyOut{},
	}
	for _, p := range incl {
		proof, err := tlog.ProveRecord(p.b, p.a, reader)
		if err != nil {
			fail("tlog.ProveRecord(%d, %d): %v", p.b, p.a, err)
		}
		sum.OwnInclusion = append(sum.OwnInclusion, inclusionOut{
			Index: p.a, Size: p.b, LeafHash: b64(tlog.RecordHash(entries[p.a])), Root: b64(rootAt(p.b)), Proof: encodeProof(proof),
		})
	}
	for _, p := range cons {
		proof, err := tlog.ProveTree(p.b, p.a, reader)
		if err != nil {
			fail("tlog.ProveTree(%d, %d): %v", p.b, p.a, err)
		}
		sum.OwnConsistency = append(sum.OwnConsistency, consistencyOut{
			From: p.a, To: p.b, RootFrom: b64(rootAt(p.a)), RootTo: b64(rootAt(p.b)), Proof: encodeProof(proof),
		})
	}
	for s, h := range roots {
		sum.Roots[strconv.FormatInt(s, 10)] = b64(h)
	}
	if sum.BeyondCheckpoint == nil {
		sum.BeyondCheckpoint = []string{}
	}
	if sum.IgnoredFiles == nil {
		sum.IgnoredFiles = []string{}
	}
	if sum.Extensions == nil {
		sum.Extensions = []string{}
	}
	sort.Strings(sum.BeyondCheckpoint)
	out, _ := json.MarshalIndent(sum, "", "  ")
	fmt.Println(string(out))
}
