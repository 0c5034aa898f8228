package auth

// Mosquitto keeps the password file in a uthash table (deps/uthash.h 2.x with
// its default Jenkins hash) and does not reject a repeated username: every
// line becomes an item, and the login check takes the first item of the
// username's bucket chain. New items go to the head of a chain, so normally
// the last line wins; but when a chain reaches its expansion threshold the
// table doubles and each chain is rebuilt in reverse, so which duplicate wins
// depends on the table's history (ten "dup:" lines in a row: the first wins;
// eleven: the last). This is a model of just enough of uthash to pick the
// same entry: items added in file order, undecodable ones deleted in file
// order, then a lookup per username.

const (
	uhInitialBuckets = 32
	uhInitialLog2    = 5
	uhChainThreshold = 10 // HASH_BKT_CAPACITY_THRESH
)

type uhItem struct {
	entry      *pwEntry
	hashv      uint32
	next, prev *uhItem // bucket chain
}

type uhBucket struct {
	head       *uhItem
	count      uint32
	expandMult uint32
}

type uhTable struct {
	buckets       []uhBucket
	log2          uint32
	numItems      uint32
	idealChainMax uint32
	nonidealItems uint32
	ineffExpands  uint32
	noexpand      bool
}

// uhash is the table; nil when empty (uthash frees it with its last item).
type uhash struct{ t *uhTable }

func (h *uhash) add(e *pwEntry) *uhItem {
	if h.t == nil {
		h.t = &uhTable{buckets: make([]uhBucket, uhInitialBuckets), log2: uhInitialLog2}
	}
	t := h.t
	it := &uhItem{entry: e, hashv: jenkinsHash(e.username)}
	t.numItems++
	b := &t.buckets[it.hashv&uint32(len(t.buckets)-1)]
	b.count++
	it.next = b.head
	if b.head != nil {
		b.head.prev = it
	}
	b.head = it
	if b.count >= (b.expandMult+1)*uhChainThreshold && !t.noexpand {
		t.expand()
	}
	return it
}

// expand is HASH_EXPAND_BUCKETS: double the buckets and push every item of
// every old chain, in chain order, onto the head of its new chain.
func (t *uhTable) expand() {
	n := uint32(len(t.buckets))
	nb := make([]uhBucket, 2*n)
	t.idealChainMax = t.numItems >> (t.log2 + 1)
	if t.numItems&(2*n-1) != 0 {
		t.idealChainMax++
	}
	t.nonidealItems = 0
	for i := range t.buckets {
		it := t.buckets[i].head
		for it != nil {
			next := it.next
			b := &nb[it.hashv&(2*n-1)]
			b.count++
			if b.count > t.idealChainMax {
				t.nonidealItems++
				if b.count > b.expandMult*t.idealChainMax {
					b.expandMult++
				}
			}
			it.prev = nil
			it.next = b.head
			if b.head != nil {
				b.head.prev = it
			}
			b.head = it
			it = next
		}
	}
	t.buckets = nb
	t.log2++
	if t.nonidealItems > t.numItems>>1 {
		t.ineffExpands++
	} else {
		t.ineffExpands = 0
	}
	if t.ineffExpands > 1 {
		t.noexpand = true
	}
}

func (h *uhash) del(it *uhItem) {
	t := h.t
	if t.numItems == 1 {
		h.t = nil
		return
	}
	b := &t.buckets[it.hashv&uint32(len(t.buckets)-1)]
	b.count--
	if b.head == it {
		b.head = it.next
	}
	if it.prev != nil {
		it.prev.next = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	}
	t.numItems--
}

func (h *uhash) find(key string) *pwEntry {
	if h.t == nil {
		return nil
	}
	hv := jenkinsHash(key)
	for it := h.t.buckets[hv&uint32(len(h.t.buckets)-1)].head; it != nil; it = it.next {
		if it.hashv == hv && it.entry.username == key {
			return it.entry
		}
	}
	return nil
}

// jenkinsHash is uthash's HASH_JEN, Bob Jenkins' lookup2 hash of the key.
func jenkinsHash(key string) uint32 {
	k := []byte(key)
	var a, b uint32 = 0x9e3779b9, 0x9e3779b9
	var c uint32 = 0xfeedbeef
	word := func(p []byte) uint32 {
		return uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24
	}
	for len(k) >= 12 {
		a += word(k[0:])
		b += word(k[4:])
		c += word(k[8:])
		a, b, c = jenMix(a, b, c)
		k = k[12:]
	}
	c += uint32(len(key))
	switch len(k) {
	case 11:
		c += uint32(k[10]) << 24
		fallthrough
	case 10:
		c += uint32(k[9]) << 16
		fallthrough
	case 9:
		c += uint32(k[8]) << 8
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	}
	_, _, c = jenMix(a, b, c)
	return c
}

func jenMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= b
	a -= c
	a ^= c >> 13
	b -= c
	b -= a
	b ^= a << 8
	c -= a
	c -= b
	c ^= b >> 13
	a -= b
	a -= c
	a ^= c >> 12
	b -= c
	b -= a
	b ^= a << 16
	c -= a
	c -= b
	c ^= b >> 5
	a -= b
	a -= c
	a ^= c >> 3
	b -= c
	b -= a
	b ^= a << 10
	c -= a
	c -= b
	c ^= b >> 15
	return a, b, c
}
