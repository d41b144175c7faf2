package emulator

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

const (
	defaultCount = 100
	strictMax    = 50
	maxFilterLen = 2048
)

// userQuery selects users: every user, or one of the filters Identity Center supports.
type userQuery struct {
	kind string // all, userName, externalId, email, group, idManager
	a, b string
}

// groupQuery selects groups.
type groupQuery struct {
	kind string // all, displayName, externalId, member, idMember
	a, b string
}

func signature(parts ...string) string {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return strconv.FormatUint(h.Sum64(), 36)
}

type cursorBody struct {
	Sig string `json:"s"`
	Key string `json:"k"`
}

// encodeCursor makes an opaque cursor that continues the query sig after key.
func encodeCursor(sig, key string) string {
	raw, _ := json.Marshal(cursorBody{Sig: sig, Key: key})
	return base64.RawURLEncoding.EncodeToString(raw)
}

// decodeCursor returns the key a cursor continues after; the cursor must belong to sig.
func decodeCursor(c, sig string) (string, error) {
	if c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(c) > 1024 {
		return "", badRequest("invalid cursor")
	}
	var cb cursorBody
	if err := json.Unmarshal(raw, &cb); err != nil || cb.Key == "" {
		return "", badRequest("invalid cursor")
	}
	if cb.Sig != sig {
		return "", badRequest("invalid cursor: it belongs to another query")
	}
	return cb.Key, nil
}

func seqKey(key string) (int64, error) {
	if key == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(key, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("invalid cursor")
	}
	return n, nil
}

// pageUsers returns up to limit users after key, and the key to continue with ("" at the end).
func (e *Emulator) pageUsers(ctx context.Context, q userQuery, key string, limit int) ([]userRec, string, error) {
	var (
		users []userRec
		err   error
		byID  bool
	)
	switch q.kind {
	case "group":
		byID = true
		users, err = e.store.queryUsers(ctx, nil, "usersInGroup", q.a, key, limit+1)
	case "idManager":
		u, gerr := e.store.getUser(ctx, nil, q.a)
		if gerr == nil && u.Doc.Enterprise != nil && u.Doc.Enterprise.Manager != nil &&
			u.Doc.Enterprise.Manager.Value == q.b && key == "" {
			users = []userRec{u}
		} else if gerr != nil && !errors.Is(gerr, errNotFound) {
			err = gerr
		}
	default:
		seq, serr := seqKey(key)
		if serr != nil {
			return nil, "", serr
		}
		switch q.kind {
		case "all":
			users, err = e.store.queryUsers(ctx, nil, "usersAll", seq, limit+1)
		case "userName":
			users, err = e.store.queryUsers(ctx, nil, "usersByName", strings.ToLower(q.a), seq, limit+1)
		case "externalId":
			users, err = e.store.queryUsers(ctx, nil, "usersByExternal", q.a, seq, limit+1)
		case "email":
			users, err = e.store.queryUsers(ctx, nil, "usersByEmail", strings.ToLower(q.a), seq, limit+1)
		}
	}
	if err != nil || len(users) <= limit {
		return users, "", err
	}
	users = users[:limit]
	last := users[limit-1]
	if byID {
		return users, last.ID, nil
	}
	return users, strconv.FormatInt(last.Seq, 10), nil
}

// pageGroups returns up to limit groups after key, and the key to continue with.
func (e *Emulator) pageGroups(ctx context.Context, q groupQuery, key string, limit int) ([]groupRec, string, error) {
	var (
		groups []groupRec
		err    error
		byID   bool
	)
	switch q.kind {
	case "member":
		byID = true
		groups, err = e.store.queryGroups(ctx, nil, "groupsOfUser", q.a, key, limit+1)
	case "idMember":
		_, merr := e.store.getMember(ctx, nil, q.a, q.b)
		switch {
		case merr == nil && key == "":
			var g groupRec
			if g, err = e.store.getGroup(ctx, nil, q.a); err == nil {
				groups = []groupRec{g}
			} else if errors.Is(err, errNotFound) {
				err = nil
			}
		case merr != nil && !errors.Is(merr, errNotFound):
			err = merr
		}
	default:
		seq, serr := seqKey(key)
		if serr != nil {
			return nil, "", serr
		}
		switch q.kind {
		case "all":
			groups, err = e.store.queryGroups(ctx, nil, "groupsAll", seq, limit+1)
		case "displayName":
			groups, err = e.store.queryGroups(ctx, nil, "groupsByName", strings.ToLower(q.a), seq, limit+1)
		case "externalId":
			groups, err = e.store.queryGroups(ctx, nil, "groupsByExternal", q.a, seq, limit+1)
		}
	}
	if err != nil || len(groups) <= limit {
		return groups, "", err
	}
	groups = groups[:limit]
	last := groups[limit-1]
	if byID {
		return groups, last.ID, nil
	}
	return groups, strconv.FormatInt(last.Seq, 10), nil
}

// eqTerm is one "attribute eq string" comparison of a filter.
type eqTerm struct {
	attr  string // lower case, "name" or "name.sub"
	value string
}

// parseEqFilter parses a SCIM filter and flattens it into eq comparisons joined by and;
// anything else (or, not, other operators, value paths, non-string values) is a 400.
func parseEqFilter(raw, coreURN string) (terms []eqTerm, err error) {
	defer func() {
		if r := recover(); r != nil {
			terms, err = nil, badRequest("invalid filter %q", raw)
		}
	}()
	if len(raw) > maxFilterLen {
		return nil, badRequest("filter is longer than %d characters", maxFilterLen)
	}
	expr, perr := filter.ParseFilter([]byte(raw))
	if perr != nil {
		return nil, badRequest("invalid filter %q: %v", raw, perr)
	}
	var walk func(filter.Expression) error
	walk = func(x filter.Expression) error {
		switch t := x.(type) {
		case *filter.LogicalExpression:
			if t.Operator != filter.AND {
				return badRequest("unsupported filter %q: only eq comparisons joined by and are supported", raw)
			}
			if err := walk(t.Left); err != nil {
				return err
			}
			return walk(t.Right)
		case *filter.AttributeExpression:
			if t.Operator != filter.EQ {
				return badRequest("unsupported filter %q: operator %s is not supported, only eq", raw, t.Operator)
			}
			if uri := t.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, coreURN) {
				return badRequest("unsupported filter %q: attribute %s is not supported", raw, t.AttributePath.String())
			}
			v, ok := t.CompareValue.(string)
			if !ok {
				return badRequest("unsupported filter %q: the value must be a string", raw)
			}
			// The parser hands the literal over with its escapes (\" and \\) still in; a SCIM
			// string is a JSON string, so decode it as one.
			if strings.ContainsRune(v, '\\') {
				var s string
				if err := json.Unmarshal([]byte(`"`+v+`"`), &s); err != nil {
					return badRequest("invalid filter %q: bad escape in a string value", raw)
				}
				v = s
			}
			name := strings.ToLower(t.AttributePath.AttributeName)
			if sub := t.AttributePath.SubAttributeName(); sub != "" {
				name += "." + strings.ToLower(sub)
			}
			terms = append(terms, eqTerm{attr: name, value: v})
			return nil
		}
		return badRequest("unsupported filter %q: only eq comparisons joined by and are supported", raw)
	}
	if err := walk(expr); err != nil {
		return nil, err
	}
	return terms, nil
}

// pair returns the values of a two-term filter naming exactly attributes x and one of ys.
func pair(terms []eqTerm, x string, ys ...string) (string, string, bool) {
	if len(terms) != 2 {
		return "", "", false
	}
	for _, order := range [][2]int{{0, 1}, {1, 0}} {
		a, b := terms[order[0]], terms[order[1]]
		if a.attr != x {
			continue
		}
		for _, y := range ys {
			if b.attr == y {
				return a.value, b.value, true
			}
		}
	}
	return "", "", false
}

func parseUserFilter(raw string) (userQuery, error) {
	if strings.TrimSpace(raw) == "" {
		return userQuery{kind: "all"}, nil
	}
	terms, err := parseEqFilter(raw, userSchemaURN)
	if err != nil {
		return userQuery{}, err
	}
	if len(terms) == 1 {
		switch terms[0].attr {
		case "username":
			return userQuery{kind: "userName", a: terms[0].value}, nil
		case "externalid":
			return userQuery{kind: "externalId", a: terms[0].value}, nil
		case "groups.value":
			return userQuery{kind: "group", a: terms[0].value}, nil
		}
	}
	if id, mgr, ok := pair(terms, "id", "manager", "manager.value"); ok {
		return userQuery{kind: "idManager", a: id, b: mgr}, nil
	}
	return userQuery{}, badRequest("unsupported filter %q: Users support userName, externalId or groups.value eq, or id eq ... and manager eq ...", raw)
}

func parseGroupFilter(raw string) (groupQuery, error) {
	if strings.TrimSpace(raw) == "" {
		return groupQuery{kind: "all"}, nil
	}
	terms, err := parseEqFilter(raw, groupSchemaURN)
	if err != nil {
		return groupQuery{}, err
	}
	if len(terms) == 1 {
		switch terms[0].attr {
		case "displayname":
			return groupQuery{kind: "displayName", a: terms[0].value}, nil
		case "externalid":
			return groupQuery{kind: "externalId", a: terms[0].value}, nil
		case "members.value":
			return groupQuery{kind: "member", a: terms[0].value}, nil
		}
	}
	if id, uid, ok := pair(terms, "id", "members", "members.value"); ok {
		return groupQuery{kind: "idMember", a: id, b: uid}, nil
	}
	return groupQuery{}, badRequest("unsupported filter %q: Groups support displayName, externalId or members.value eq, or id eq ... and members eq ...", raw)
}

// listParams are the validated query parameters of a list request.
type listParams struct {
	filter string
	count  int
	cursor string
	start  int // StrictRFC: the 1-based startIndex
}

func (e *Emulator) parseListParams(r *http.Request) (listParams, error) {
	q := r.URL.Query()
	for _, k := range []string{"attributes", "excludedAttributes", "sortBy", "sortOrder"} {
		if q.Has(k) {
			return listParams{}, badRequest("query parameter %s is not supported", k)
		}
	}
	p := listParams{filter: q.Get("filter"), count: defaultCount, cursor: q.Get("cursor")}
	if q.Has("count") {
		n, err := strconv.Atoi(q.Get("count"))
		if err != nil || n < 1 || n > defaultCount {
			return p, badRequest("count must be an integer from 1 to %d, got %q", defaultCount, q.Get("count"))
		}
		p.count = n
	}
	switch {
	case e.strict:
		if q.Has("cursor") {
			return p, badRequest("query parameter cursor is not supported")
		}
		p.count = min(p.count, strictMax)
	case e.strictRFC:
		// RFC 7644 3.4.2.4: count may be anything >= 0, the server caps it; startIndex is 1-based
		// and values below 1 mean 1.
		p.count = e.rfcPageSize
		if q.Has("count") {
			n, err := strconv.Atoi(q.Get("count"))
			if err != nil {
				return p, badRequest("count must be an integer, got %q", q.Get("count"))
			}
			p.count = min(max(n, 0), e.rfcPageSize)
		}
		p.start = 1
		if q.Has("startIndex") {
			n, err := strconv.Atoi(q.Get("startIndex"))
			if err != nil {
				return p, badRequest("startIndex must be an integer, got %q", q.Get("startIndex"))
			}
			p.start = max(n, 1)
		}
		p.cursor = ""
	case q.Has("startIndex"):
		return p, badRequest("query parameter startIndex is not supported; use cursor")
	}
	return p, nil
}

// rfcPage cuts the page of a StrictRFC listing out of every match: the resources from startIndex
// on, at most count of them, and the total.
func rfcPage[T any](all []T, p listParams) ([]T, int) {
	from := min(p.start-1, len(all))
	to := min(from+p.count, len(all))
	return all[from:to], len(all)
}

// everything is the page size that reads a whole query in one go, for StrictRFC listings.
const everything = 1 << 30

// writeListPage sends a list response: the cursor form, or in strict mode the old capped form,
// with the startIndex and totalResults of a StrictRFC page.
func (e *Emulator) writeListPage(w http.ResponseWriter, resources []any, next string, start, total int) {
	body := map[string]any{
		"schemas":      []string{listResponseURN},
		"Resources":    resources,
		"itemsPerPage": len(resources),
	}
	if e.strictRFC {
		body["totalResults"] = total
		body["startIndex"] = start
		writeJSON(w, http.StatusOK, "application/scim+json", body)
		return
	}
	if e.strict {
		body["totalResults"] = len(resources)
		body["startIndex"] = 1
	} else if next != "" {
		body["nextCursor"] = next
	}
	writeJSON(w, http.StatusOK, "application/scim+json", body)
}

// listUsers serves GET /Users.
func (e *Emulator) listUsers(w http.ResponseWriter, r *http.Request, _ []byte) {
	p, err := e.parseListParams(r)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	q, err := parseUserFilter(p.filter)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	sig := signature("Users", q.kind, q.a, q.b)
	key, err := decodeCursor(p.cursor, sig)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	limit := p.count
	if e.strictRFC {
		limit = everything
	}
	users, next, err := e.pageUsers(r.Context(), q, key, max(limit, 1))
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	total := 0
	if e.strictRFC {
		users, total = rfcPage(users, p)
	}
	out := make([]any, 0, len(users))
	for i := range users {
		out = append(out, userResource(&users[i]).render())
	}
	if next != "" {
		next = encodeCursor(sig, next)
	}
	e.writeListPage(w, out, next, p.start, total)
}

// listGroups serves GET /Groups.
func (e *Emulator) listGroups(w http.ResponseWriter, r *http.Request, _ []byte) {
	p, err := e.parseListParams(r)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	q, err := parseGroupFilter(p.filter)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	// A member filter naming a user that does not exist: 404.
	if uid := map[string]string{"member": q.a, "idMember": q.b}[q.kind]; uid != "" {
		ok, err := e.store.userExists(r.Context(), nil, uid)
		if err != nil {
			e.sendSCIMError(w, r, err)
			return
		}
		if !ok {
			e.sendSCIMError(w, r, userNotFound(uid))
			return
		}
	}
	sig := signature("Groups", q.kind, q.a, q.b)
	key, err := decodeCursor(p.cursor, sig)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	limit := p.count
	if e.strictRFC {
		limit = everything
	}
	groups, next, err := e.pageGroups(r.Context(), q, key, max(limit, 1))
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	total := 0
	if e.strictRFC {
		groups, total = rfcPage(groups, p)
	}
	out := make([]any, 0, len(groups))
	for i := range groups {
		res, err := e.groupResourceWithMembers(r.Context(), &groups[i])
		if err != nil {
			e.sendSCIMError(w, r, err)
			return
		}
		out = append(out, res.render())
	}
	if next != "" {
		next = encodeCursor(sig, next)
	}
	e.writeListPage(w, out, next, p.start, total)
}
