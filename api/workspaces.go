package api

import (
	"net/http"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/httpx"
	"github.com/gatehouse/gatehouse/service"
)

func (a *API) listWorkspaces(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ws, next, err := a.Service.Workspaces(r.Context(), p, pg)
	if err != nil {
		return err
	}
	writeList(w, ws, next)
	return nil
}

func (a *API) createWorkspace(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	var in service.NewWorkspace
	if err := httpx.DecodeJSON(w, r, &in, false); err != nil {
		return err
	}
	ws, err := a.Service.CreateWorkspace(r.Context(), p, in)
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusCreated, ws)
	return nil
}

func (a *API) getWorkspace(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	ws, err := a.Service.Workspace(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	httpx.WriteJSON(w, http.StatusOK, ws)
	return nil
}

func (a *API) deleteWorkspace(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.DeleteWorkspace(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// Member is one entry of a workspace's member list.
type Member struct {
	UserID string `json:"user_id"`
}

func (a *API) listMembers(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	ids, err := a.Service.WorkspaceMembers(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]Member, len(ids))
	for i, id := range ids {
		out[i] = Member{UserID: id}
	}
	writeList(w, out, "")
	return nil
}

func (a *API) addMember(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.AddWorkspaceMember(r.Context(), p, r.PathValue("id"), r.PathValue("user_id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

func (a *API) removeMember(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	if err := a.Service.RemoveWorkspaceMember(r.Context(), p, r.PathValue("id"), r.PathValue("user_id")); err != nil {
		return err
	}
	noContent(w)
	return nil
}

// WorkspaceMetadata describes one visible workspace and the caller's access
// to it: "admin", "owner" or "member".
type WorkspaceMetadata struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	OwnerID string `json:"owner_id"`
	Access  string `json:"access"`
}

func (a *API) workspaceMetadata(w http.ResponseWriter, r *http.Request, p *gatehouse.Principal) error {
	pg, err := page(r)
	if err != nil {
		return err
	}
	ws, next, err := a.Service.Workspaces(r.Context(), p, pg)
	if err != nil {
		return err
	}
	out := make([]WorkspaceMetadata, len(ws))
	for i, x := range ws {
		out[i] = WorkspaceMetadata{ID: x.ID, Name: x.Name, OwnerID: x.OwnerID, Access: service.WorkspaceAccess(p, x)}
	}
	writeList(w, out, next)
	return nil
}
