package gatehouse

// Page asks for one page of a list: at most Limit items after the item
// with id After, or, when Before is set instead, the Limit items just
// before the item with id Before. Both empty ask for the first page.
// "After" and "before" follow the list's own order (newest first for the
// audit log).
type Page struct {
	Limit  int
	After  string
	Before string
}

// Cursors are where the pages beside one page of a list begin: Next is the
// id to list after for the following page, Prev the id to list before for
// the preceding one; "" when there is no such page.
type Cursors struct {
	Next, Prev string
}

// Paging limits of every list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Size returns Limit clamped into 1…MaxPageSize, DefaultPageSize when unset.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageSize
	case p.Limit > MaxPageSize:
		return MaxPageSize
	}
	return p.Limit
}
