package emulator

import (
	"context"
	"net/http"
)

// organizationsPage is the largest page the organizations API returns (ListAccounts and the
// listings by parent take MaxResults 1..20).
const organizationsPage = 20

// organizationsOperations maps each organizations operation the emulator serves (X-Amz-Target
// "AWSOrganizationsV20161128.<name>"; the Stats key is "organizations.<name>") to its handler.
var organizationsOperations = map[string]accessOperation{
	"DescribeOrganization":             (*Emulator).orgDescribe,
	"ListRoots":                        (*Emulator).orgListRoots,
	"ListOrganizationalUnitsForParent": (*Emulator).orgListUnits,
	"ListAccountsForParent":            (*Emulator).orgListAccountsForParent,
	"ListAccounts":                     (*Emulator).orgListAccounts,
	"ListParents":                      (*Emulator).orgListParents,
	"ListTagsForResource":              (*Emulator).orgListTags,
}

func orgInvalid(detail string) error {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: "InvalidInputException"}
}

func orgNotFound(typ, detail string) error {
	return &apiError{status: http.StatusBadRequest, detail: detail, awsType: typ}
}

func (a *accessState) orgARN(kind, id string) string {
	return "arn:aws:organizations::" + a.org.Management + ":" + kind + "/" + a.org.ID + "/" + id
}

func (a *accessState) accountOut(acc *orgAccount) map[string]any {
	return map[string]any{
		"Id": acc.ID, "Arn": a.orgARN("account", acc.ID), "Email": acc.Email, "Name": acc.Name,
		"Status": acc.Status, "State": acc.Status, "JoinedMethod": "CREATED", "JoinedTimestamp": epoch(acc.Joined),
	}
}

func (e *Emulator) orgDescribe(_ context.Context, body []byte) (any, error) {
	var req struct{}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	mgmt := a.accounts[a.org.Management]
	return map[string]any{"Organization": map[string]any{
		"Id": a.org.ID, "Arn": "arn:aws:organizations::" + mgmt.ID + ":organization/" + a.org.ID, "FeatureSet": "ALL",
		"MasterAccountArn": a.orgARN("account", mgmt.ID), "MasterAccountEmail": mgmt.Email, "MasterAccountId": mgmt.ID,
		"AvailablePolicyTypes": []any{},
	}}, nil
}

func (e *Emulator) orgListRoots(_ context.Context, body []byte) (any, error) {
	var req pageParams
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	return pageAnswer([]string{a.org.RootID}, req, organizationsPage, "roots", orgInvalid, "Roots", func(id string) any {
		return map[string]any{"Id": id, "Arn": a.orgARN("root", id), "Name": a.units[id].Name, "PolicyTypes": []any{}}
	})
}

// parentRequest is a listing of what a root or OU holds.
type parentRequest struct {
	pageParams
	ParentID *string `json:"ParentId"`
}

// decodeParent decodes a parentRequest strictly and checks its ParentId.
func (a *accessState) decodeParent(body []byte, req *parentRequest) (string, error) {
	if err := decodeAccess(body, req); err != nil {
		return "", err
	}
	return a.parent(req.ParentID)
}

// parent checks the ParentId of a listing.
func (a *accessState) parent(id *string) (string, error) {
	if id == nil || *id == "" {
		return "", orgInvalid("ParentId is required")
	}
	if a.units[*id] == nil {
		return "", orgNotFound("ParentNotFoundException", "We can't find a root or OU with the ParentId that you specified.")
	}
	return *id, nil
}

func (e *Emulator) orgListUnits(_ context.Context, body []byte) (any, error) {
	var req parentRequest
	a := e.access
	parent, err := a.decodeParent(body, &req)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, u := range a.org.Units {
		if u.ParentID == parent {
			ids = append(ids, u.ID)
		}
	}
	return pageAnswer(ids, req.pageParams, organizationsPage, "ous:"+parent, orgInvalid, "OrganizationalUnits", func(id string) any {
		return map[string]any{"Id": id, "Arn": a.orgARN("ou", id), "Name": a.units[id].Name}
	})
}

func (e *Emulator) listAccountsWhere(req pageParams, sig string, keep func(*orgAccount) bool) (any, error) {
	a := e.access
	var ids []string
	for _, acc := range a.org.Accounts {
		if keep(acc) {
			ids = append(ids, acc.ID)
		}
	}
	return pageAnswer(ids, req, organizationsPage, sig, orgInvalid, "Accounts", func(id string) any {
		return a.accountOut(a.accounts[id])
	})
}

func (e *Emulator) orgListAccountsForParent(_ context.Context, body []byte) (any, error) {
	var req parentRequest
	parent, err := e.access.decodeParent(body, &req)
	if err != nil {
		return nil, err
	}
	return e.listAccountsWhere(req.pageParams, "accounts:"+parent, func(acc *orgAccount) bool { return acc.ParentID == parent })
}

func (e *Emulator) orgListAccounts(_ context.Context, body []byte) (any, error) {
	var req pageParams
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	return e.listAccountsWhere(req, "accounts", func(*orgAccount) bool { return true })
}

func (e *Emulator) orgListParents(_ context.Context, body []byte) (any, error) {
	var req struct {
		pageParams
		ChildID *string `json:"ChildId"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if req.ChildID == nil || *req.ChildID == "" {
		return nil, orgInvalid("ChildId is required")
	}
	parent := ""
	if acc := a.accounts[*req.ChildID]; acc != nil {
		parent = acc.ParentID
	} else if u := a.units[*req.ChildID]; u != nil && u.ParentID != "" {
		parent = u.ParentID
	}
	if parent == "" {
		return nil, orgNotFound("ChildNotFoundException", "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.")
	}
	typ := "ORGANIZATIONAL_UNIT"
	if parent == a.org.RootID {
		typ = "ROOT"
	}
	if _, _, err := pageOf([]string{parent}, req.pageParams, organizationsPage, "parents", orgInvalid); err != nil {
		return nil, err
	}
	return map[string]any{"Parents": []any{map[string]any{"Id": parent, "Type": typ}}}, nil
}

func (e *Emulator) orgListTags(_ context.Context, body []byte) (any, error) {
	var req struct {
		NextToken  *string `json:"NextToken"`
		ResourceID *string `json:"ResourceId"`
	}
	if err := decodeAccess(body, &req); err != nil {
		return nil, err
	}
	a := e.access
	if req.ResourceID == nil || *req.ResourceID == "" {
		return nil, orgInvalid("ResourceId is required")
	}
	var tags map[string]string
	if acc := a.accounts[*req.ResourceID]; acc != nil {
		tags = acc.Tags
	} else if u := a.units[*req.ResourceID]; u != nil {
		tags = u.Tags
	} else {
		return nil, orgNotFound("TargetNotFoundException", "We can't find a resource with the ResourceId that you specified.")
	}
	return map[string]any{"Tags": tagsOut(tags)}, nil
}
