package emulator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// groupResource renders a stored group as a SCIM resource, with members empty as Identity
// Center returns them.
func groupResource(g *groupRec) resource {
	return resource{resourceType: "Group", schemas: groupSchemas, id: g.ID, externalID: g.ExternalID,
		attributes: map[string]any{"displayName": g.DisplayName, "members": []any{}},
		created:    g.Created, modified: g.Modified, revision: g.Revision}
}

// groupResourceWithMembers is groupResource with the members filled in when
// Options.MembersInListings is set; it renders GET /Groups and GET /Groups/{id}.
func (e *Emulator) groupResourceWithMembers(ctx context.Context, g *groupRec) (resource, error) {
	res := groupResource(g)
	if !e.membersInListings {
		return res, nil
	}
	ms, err := e.store.queryMembers(ctx, nil, "membersOfGroup", g.ID, "", everything)
	if err != nil {
		return resource{}, err
	}
	members := make([]any, 0, len(ms))
	for _, m := range ms {
		members = append(members, map[string]any{"value": m.UserID, "type": "User"})
	}
	res.attributes["members"] = members
	return res, nil
}

func groupNotFound(id string) *apiError { return notFound("Group %s not found.", id) }

// createGroup serves POST /Groups: 201 with the group (members empty, as Identity Center
// answers).
func (e *Emulator) createGroup(w http.ResponseWriter, r *http.Request, body []byte) {
	d, err := decodeGroup(body)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	uids := make([]string, 0, len(d.Members))
	for _, m := range d.Members {
		uids = append(uids, m.Value)
	}
	g, err := e.insertGroup(r.Context(), d.DisplayName, d.ExternalID, "", "scim", uids)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusCreated, groupResource(&g))
}

// insertGroup stores a new group with its members, written through createdBy ("scim" or
// "identitystore").
func (e *Emulator) insertGroup(ctx context.Context, name, externalID, description, createdBy string, members []string) (groupRec, error) {
	now := time.Now().UTC()
	g := groupRec{ID: e.newID(), DisplayName: name, ExternalID: externalID, Description: description,
		Created: now, Modified: now, Revision: 1, CreatedBy: createdBy}
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
		if err := e.store.insertGroup(ctx, tx, &g); err != nil {
			return err
		}
		return e.addMembers(ctx, tx, g.ID, members, now)
	})
	if errors.Is(err, errDuplicate) {
		return g, conflict(detailDuplicate)
	}
	return g, err
}

func (e *Emulator) addMembers(ctx context.Context, tx *sql.Tx, gid string, uids []string, now time.Time) error {
	for _, uid := range uids {
		ok, err := e.store.userExists(ctx, tx, uid)
		if err != nil {
			return err
		}
		if !ok {
			return badRequest("member %q does not name an existing user", uid)
		}
		if _, err := e.store.addMember(ctx, tx, gid, uid, e.newID(), now); err != nil {
			return err
		}
	}
	return nil
}

// getGroup serves GET /Groups/{id}.
func (e *Emulator) getGroup(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	g, err := e.store.getGroup(r.Context(), nil, id)
	if errors.Is(err, errNotFound) {
		err = groupNotFound(id)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	res, err := e.groupResourceWithMembers(r.Context(), &g)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeResource(w, http.StatusOK, res)
}

// deleteGroup serves DELETE /Groups/{id}: 204.
func (e *Emulator) deleteGroup(w http.ResponseWriter, r *http.Request, _ []byte) {
	id := r.PathValue("id")
	err := e.store.deleteGroup(r.Context(), id)
	if errors.Is(err, errNotFound) {
		err = groupNotFound(id)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	writeNoContent(w)
}

// patchGroup serves PATCH /Groups/{id}: 204 No Content, as Identity Center answers. How the
// operations read (Identity Center's or StrictRFC's) is decided in planGroupPatch.
func (e *Emulator) patchGroup(w http.ResponseWriter, r *http.Request, body []byte) {
	ops, err := decodePatch(body)
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	gp, err := planGroupPatch(ops, e.strictRFC)
	if err == nil {
		err = e.applyGroupPatch(r.Context(), r.PathValue("id"), gp)
	}
	if err != nil {
		e.sendSCIMError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) applyGroupPatch(ctx context.Context, id string, gp groupPatch) error {
	now := time.Now().UTC()
	err := e.store.inTx(ctx, func(tx *sql.Tx) error {
		g, err := e.store.getGroup(ctx, tx, id)
		if errors.Is(err, errNotFound) {
			return groupNotFound(id)
		}
		if err != nil {
			return err
		}
		if gp.displayName != nil || gp.externalID != nil {
			if gp.displayName != nil {
				g.DisplayName = *gp.displayName
			}
			if gp.externalID != nil {
				g.ExternalID = *gp.externalID
			}
			g.Modified = now
			if err := e.store.updateGroup(ctx, tx, &g); err != nil {
				return err
			}
		}
		if gp.removeAll {
			if _, err := e.store.q(ctx, tx, "membersDeleteGroup").ExecContext(ctx, id); err != nil {
				return fmt.Errorf("remove all members: %w", err)
			}
		}
		if err := e.addMembers(ctx, tx, id, gp.add, now); err != nil {
			return err
		}
		for _, uid := range gp.remove {
			if _, err := e.store.removeMember(ctx, tx, id, uid); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errDuplicate) {
		return conflict(detailDuplicate)
	}
	return err
}
