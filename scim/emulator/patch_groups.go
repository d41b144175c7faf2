package emulator

import (
	"fmt"
	"strings"
)

// groupPatch is the net effect of a group PATCH request.
type groupPatch struct {
	displayName *string
	externalID  *string
	removeAll   bool // StrictRFC: every member goes first (a remove or replace of "members")
	add         []string
	remove      []string
}

// planGroupPatch checks a group PATCH against Identity Center's rules: only displayName,
// externalId and members; no replace or remove of all members; at most 100 member changes.
// With rfc (Options.StrictRFC) it applies RFC 7644 literally instead: a remove of "members"
// without a value filter removes every member whatever value it carries, a replace of
// "members" replaces them all, and there is no cap on the changes.
func planGroupPatch(ops []patchOp, rfc bool) (groupPatch, error) {
	var gp groupPatch
	setString := func(dst **string, name string, v any, i int) error {
		s, ok := v.(string)
		if !ok {
			return badRequest("Operations[%d]: %s must be a string, got %s", i, name, jsonKind(v))
		}
		spec := groupSpecs[strings.ToLower(name)]
		if _, err := normalizeValue(s, spec, name); err != nil {
			return err
		}
		*dst = &s
		return nil
	}
	memberIDs := func(v any, i int) ([]string, error) {
		list, ok := v.([]any)
		if !ok {
			return nil, badRequest("Operations[%d]: members must be an array, got %s", i, jsonKind(v))
		}
		ids := make([]string, 0, len(list))
		for j, el := range list {
			obj, ok := el.(map[string]any)
			if !ok {
				return nil, badRequest("Operations[%d]: members[%d] must be an object", i, j)
			}
			n, err := normalizeObject(obj, memberSpec, fmt.Sprintf("members[%d].", j))
			if err != nil {
				return nil, err
			}
			id, _ := n["value"].(string)
			if id == "" {
				return nil, badRequest("Operations[%d]: members[%d].value is required", i, j)
			}
			ids = append(ids, id)
		}
		return ids, nil
	}
	for i, op := range ops {
		if op.path == "" {
			obj, ok := op.value.(map[string]any)
			if !ok {
				return gp, badRequest("Operations[%d]: value must be an object when path is absent", i)
			}
			for k, v := range obj {
				a, ok := groupSpecs[strings.ToLower(k)]
				if !ok || a.kind == kAny || a.name == "schemas" {
					return gp, badRequest("Operations[%d]: attribute %q cannot be patched", i, k)
				}
				var err error
				switch a.name {
				case "displayName":
					err = setString(&gp.displayName, a.name, v, i)
				case "externalId":
					err = setString(&gp.externalID, a.name, v, i)
				case "members":
					if op.op == "replace" && !rfc {
						return gp, badRequest("Operations[%d]: replacing all members is not supported", i)
					}
					if op.op == "replace" {
						gp.removeAll, gp.add, gp.remove = true, nil, nil
					}
					var ids []string
					ids, err = memberIDs(v, i)
					gp.add = append(gp.add, ids...)
				}
				if err != nil {
					return gp, err
				}
			}
			continue
		}
		path, err := parsePatchPath(op.path)
		if err != nil {
			return gp, err
		}
		if path.AttributePath.URI() != "" && !strings.EqualFold(path.AttributePath.URI(), groupSchemaURN) {
			return gp, badRequest("Operations[%d]: unknown schema in path %q", i, op.path)
		}
		name := strings.ToLower(path.AttributePath.AttributeName)
		hasSub := path.AttributePath.SubAttribute != nil || path.SubAttribute != nil
		switch {
		case name == "displayname" && !hasSub && path.ValueExpression == nil:
			if op.op == "remove" {
				return gp, badRequest("Operations[%d]: displayName cannot be removed", i)
			}
			if err := setString(&gp.displayName, "displayName", op.value, i); err != nil {
				return gp, err
			}
		case name == "externalid" && !hasSub && path.ValueExpression == nil:
			if op.op == "remove" {
				empty := ""
				gp.externalID = &empty
			} else if err := setString(&gp.externalID, "externalId", op.value, i); err != nil {
				return gp, err
			}
		case name == "members" && !hasSub && path.ValueExpression == nil && rfc && op.op != "add":
			// RFC 7644 3.5.2.2: "If no filter is specified, [remove] removes all values of the
			// multi-valued attribute" (a value list does not narrow it); 3.5.2.3: replace
			// replaces all values.
			gp.removeAll, gp.add, gp.remove = true, nil, nil
			if op.op == "replace" {
				ids, err := memberIDs(op.value, i)
				if err != nil {
					return gp, err
				}
				gp.add = ids
			}
		case name == "members" && !hasSub && path.ValueExpression == nil:
			switch {
			case op.op == "replace":
				return gp, badRequest("Operations[%d]: replacing all members is not supported", i)
			case op.op == "remove" && !op.hasValue:
				return gp, badRequest("Operations[%d]: removing all members is not supported", i)
			}
			ids, err := memberIDs(op.value, i)
			if err != nil {
				return gp, err
			}
			if op.op == "add" {
				gp.add = append(gp.add, ids...)
			} else {
				gp.remove = append(gp.remove, ids...)
			}
		case name == "members" && !hasSub && path.ValueExpression != nil && op.op == "remove":
			conds, err := eqConditions(path.ValueExpression, memberSpec)
			if err != nil {
				return gp, err
			}
			id, ok := conds["value"].(string)
			if !ok || len(conds) != 1 {
				return gp, badRequest("Operations[%d]: a member filter must be value eq \"<user id>\"", i)
			}
			gp.remove = append(gp.remove, id)
		default:
			return gp, badRequest("Operations[%d]: %s on path %q is not supported; only displayName, externalId and members can be patched", i, op.op, op.path)
		}
	}
	if n := len(gp.add) + len(gp.remove); n > maxMembersOp && !rfc {
		return gp, badRequest("%s At most %d membership changes per request, got %d.", detailUnparsable, maxMembersOp, n)
	}
	return gp, nil
}
