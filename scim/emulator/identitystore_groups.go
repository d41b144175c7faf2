package emulator

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"time"
)

// idstoreGroup renders a stored group as the identitystore Group shape.
func (e *Emulator) idstoreGroup(g *groupRec) map[string]any {
	out := map[string]any{
		"IdentityStoreId": e.storeID,
		"GroupId":         g.ID,
		"DisplayName":     g.DisplayName,
		"Revision":        strconv.FormatInt(g.Revision, 10),
		"CreatedAt":       epoch(g.Created),
		"UpdatedAt":       epoch(g.Modified),
		"CreatedBy":       g.CreatedBy,
		"UpdatedBy":       g.CreatedBy,
	}
	if g.Description != "" {
		out["Description"] = g.Description
	}
	if g.ExternalID != "" {
		out["ExternalIds"] = []map[string]string{{"Issuer": SCIMExternalIDIssuer, "Id": g.ExternalID}}
	}
	return out
}

// ListGroups lists groups, all or by DisplayName, a page at a time.
func (e identityStoreAPI) ListGroups(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	q := groupQuery{kind: "all"}
	if len(req.Filters) > 1 {
		return nil, validationException("at most one filter is supported")
	}
	if len(req.Filters) == 1 {
		f := req.Filters[0]
		if deref(f.AttributePath) != "DisplayName" || f.AttributeValue == nil {
			return nil, validationException("only the DisplayName filter is supported")
		}
		q = groupQuery{kind: "displayName", a: *f.AttributeValue}
	}
	sig := signature("is.ListGroups", q.kind, q.a)
	key, err := tokenKey(req, sig)
	if err != nil {
		return nil, err
	}
	groups, next, err := e.pageGroups(ctx, q, key, limit)
	if err != nil {
		return nil, asIdstoreError(err)
	}
	out := make([]any, 0, len(groups))
	for i := range groups {
		out = append(out, e.idstoreGroup(&groups[i]))
	}
	return map[string]any{"Groups": out, "NextToken": nextToken(sig, next)}, nil
}

// GetGroupID finds a group by ExternalId or DisplayName.
func (e identityStoreAPI) GetGroupID(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	kind, v, err := altID(req)
	if err != nil {
		return nil, err
	}
	var q groupQuery
	switch kind {
	case "external":
		q = groupQuery{kind: "externalId", a: v}
	case "external-unknown":
		return nil, resourceNotFoundException("GROUP", v)
	case "displayName", "DisplayName":
		q = groupQuery{kind: "displayName", a: v}
	default:
		return nil, validationException("unique attribute %q is not supported for groups; use displayName", kind)
	}
	groups, _, err := e.pageGroups(ctx, q, "", 1)
	if err != nil {
		return nil, asIdstoreError(err)
	}
	if len(groups) == 0 {
		return nil, resourceNotFoundException("GROUP", v)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "GroupId": groups[0].ID}, nil
}

// DescribeGroup returns one group.
func (e identityStoreAPI) DescribeGroup(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	g, err := e.store.getGroup(ctx, nil, id)
	if errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("GROUP", id)
	}
	if err != nil {
		return nil, err
	}
	return e.idstoreGroup(&g), nil
}

// CreateGroup creates a group without members.
func (e identityStoreAPI) CreateGroup(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	name, err := required(req.DisplayName, "DisplayName")
	if err != nil {
		return nil, err
	}
	g, err := e.insertGroup(ctx, name, "", deref(req.Description), "identitystore", nil)
	if err != nil {
		return nil, asIdstoreError(err)
	}
	return map[string]any{"IdentityStoreId": e.storeID, "GroupId": g.ID, "Revision": strconv.FormatInt(g.Revision, 10)}, nil
}

// UpdateGroup replaces a group's DisplayName or Description.
func (e identityStoreAPI) UpdateGroup(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	if len(req.Operations) == 0 {
		return nil, validationException("Operations must hold at least one operation")
	}
	var g groupRec
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = e.store.getGroup(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return resourceNotFoundException("GROUP", id)
		}
		if err != nil {
			return err
		}
		if req.Revision != nil && *req.Revision != strconv.FormatInt(g.Revision, 10) {
			return conflictException("the group was modified since revision " + *req.Revision)
		}
		for _, o := range req.Operations {
			v, _ := o.AttributeValue.(string)
			switch strings.ToLower(deref(o.AttributePath)) {
			case "displayname":
				if v == "" || len(v) > maxText {
					return validationException("displayName must be 1 to %d characters", maxText)
				}
				g.DisplayName = v
			case "description":
				g.Description = v
			default:
				return validationException("attribute %q cannot be updated", deref(o.AttributePath))
			}
		}
		g.Modified = time.Now().UTC()
		return e.store.updateGroup(ctx, tx, &g)
	})
	if errors.Is(err, errDuplicate) {
		return nil, conflictException(detailDuplicate)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "GroupId": g.ID, "Revision": strconv.FormatInt(g.Revision, 10)}, nil
}

// DeleteGroup deletes a group and its memberships.
func (e identityStoreAPI) DeleteGroup(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	if err := e.store.deleteGroup(ctx, id); errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("GROUP", id)
	} else if err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}
