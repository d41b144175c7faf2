package emulator

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// idstoreMembership renders a stored membership as the identitystore GroupMembership shape.
func (e *Emulator) idstoreMembership(m *memberRec) map[string]any {
	return map[string]any{
		"IdentityStoreId": e.storeID,
		"MembershipId":    m.MembershipID,
		"GroupId":         m.GroupID,
		"MemberId":        map[string]string{"UserId": m.UserID},
		"CreatedAt":       epoch(m.Created),
		"UpdatedAt":       epoch(m.Created),
	}
}

// ListGroupMemberships lists a group's memberships.
func (e identityStoreAPI) ListGroupMemberships(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	gid, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	if ok, err := e.store.groupExists(ctx, nil, gid); err != nil || !ok {
		return nil, errors.Join(err, resourceNotFoundException("GROUP", gid))
	}
	return e.listMemberships(ctx, req, "membersOfGroup", gid, func(m memberRec) string { return m.UserID })
}

// ListGroupMembershipsForMember lists a user's memberships.
func (e identityStoreAPI) ListGroupMembershipsForMember(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	if ok, err := e.store.userExists(ctx, nil, uid); err != nil || !ok {
		return nil, errors.Join(err, resourceNotFoundException("USER", uid))
	}
	return e.listMemberships(ctx, req, "membershipsOfUser", uid, func(m memberRec) string { return m.GroupID })
}

// listMemberships pages the memberships stmt selects for id; keyOf gives the continuation key.
func (e identityStoreAPI) listMemberships(ctx context.Context, req *idstoreRequest, stmt, id string, keyOf func(memberRec) string) (map[string]any, error) {
	limit, err := maxResults(req)
	if err != nil {
		return nil, err
	}
	sig := signature("is."+stmt, id)
	key, err := tokenKey(req, sig)
	if err != nil {
		return nil, err
	}
	ms, err := e.store.queryMembers(ctx, nil, stmt, id, key, limit+1)
	if err != nil {
		return nil, err
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = keyOf(ms[limit-1])
	}
	out := make([]any, 0, len(ms))
	for i := range ms {
		out = append(out, e.idstoreMembership(&ms[i]))
	}
	return map[string]any{"GroupMemberships": out, "NextToken": nextToken(sig, next)}, nil
}

// GetGroupMembershipID returns the id of a user's membership in a group.
func (e identityStoreAPI) GetGroupMembershipID(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	gid, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	m, err := e.store.getMember(ctx, nil, gid, uid)
	if errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("GROUP_MEMBERSHIP", gid+"/"+uid)
	}
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "MembershipId": m.MembershipID}, nil
}

// DescribeGroupMembership returns one membership.
func (e identityStoreAPI) DescribeGroupMembership(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.MembershipID, "MembershipId")
	if err != nil {
		return nil, err
	}
	m, err := e.store.getMemberByID(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("GROUP_MEMBERSHIP", id)
	}
	if err != nil {
		return nil, err
	}
	return e.idstoreMembership(&m), nil
}

// IsMemberInGroups tells for each group whether the user is a member.
func (e identityStoreAPI) IsMemberInGroups(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	if len(req.GroupIDs) < 1 || len(req.GroupIDs) > 100 {
		return nil, validationException("GroupIds must hold 1 to 100 ids")
	}
	if ok, err := e.store.userExists(ctx, nil, uid); err != nil || !ok {
		return nil, errors.Join(err, resourceNotFoundException("USER", uid))
	}
	results := make([]any, 0, len(req.GroupIDs))
	for _, gid := range req.GroupIDs {
		_, err := e.store.getMember(ctx, nil, gid, uid)
		if err != nil && !errors.Is(err, errNotFound) {
			return nil, err
		}
		results = append(results, map[string]any{"GroupId": gid, "MemberId": map[string]string{"UserId": uid},
			"MembershipExists": err == nil})
	}
	return map[string]any{"Results": results}, nil
}

// CreateGroupMembership adds a user to a group.
func (e identityStoreAPI) CreateGroupMembership(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	gid, err := required(req.GroupID, "GroupId")
	if err != nil {
		return nil, err
	}
	uid, err := memberUserID(req)
	if err != nil {
		return nil, err
	}
	mid := e.newID()
	err = e.store.inTx(ctx, func(tx *sql.Tx) error {
		if ok, err := e.store.groupExists(ctx, tx, gid); err != nil || !ok {
			return errors.Join(err, resourceNotFoundException("GROUP", gid))
		}
		if ok, err := e.store.userExists(ctx, tx, uid); err != nil || !ok {
			return errors.Join(err, resourceNotFoundException("USER", uid))
		}
		added, err := e.store.addMember(ctx, tx, gid, uid, mid, time.Now().UTC())
		if err != nil {
			return err
		}
		if !added {
			return conflictException("Member already exists in the group.")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"IdentityStoreId": e.storeID, "MembershipId": mid}, nil
}

// DeleteGroupMembership deletes one membership.
func (e identityStoreAPI) DeleteGroupMembership(ctx context.Context, req *idstoreRequest) (map[string]any, error) {
	id, err := required(req.MembershipID, "MembershipId")
	if err != nil {
		return nil, err
	}
	m, err := e.store.getMemberByID(ctx, id)
	if errors.Is(err, errNotFound) {
		return nil, resourceNotFoundException("GROUP_MEMBERSHIP", id)
	}
	if err != nil {
		return nil, err
	}
	if _, err := e.store.removeMember(ctx, nil, m.GroupID, m.UserID); err != nil {
		return nil, err
	}
	return map[string]any{}, nil
}
