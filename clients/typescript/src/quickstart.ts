// The README's quick start with the typed client: the password grant,
// GET /v1/me, a new user, a new workspace. It reads GATEHOUSE_URL (the
// origin, default http://127.0.0.1:8080), GATEHOUSE_PREFIX (the management
// prefix, default none), GATEHOUSE_EMAIL and GATEHOUSE_PASSWORD (the
// operator-admin), and GATEHOUSE_NEW_EMAIL (the user to make). It prints
// one JSON line per step and exits non-zero on the first error.
import { failure, gatehouse } from "./client.js";

const origin = process.env["GATEHOUSE_URL"] ?? "http://127.0.0.1:8080";
const prefix = process.env["GATEHOUSE_PREFIX"] ?? "";
const email = process.env["GATEHOUSE_EMAIL"] ?? "admin@example.com";
const password = process.env["GATEHOUSE_PASSWORD"] ?? "";
const newEmail = process.env["GATEHOUSE_NEW_EMAIL"] ?? "dev@example.com";

async function main(): Promise<void> {
  // Log in with the password grant.
  const login = await gatehouse({ origin, prefix }).root.POST("/authorization", {
    body: { username: email, password },
  });
  if (!login.data) {
    throw failure("POST /authorization", login.response.status, login.error);
  }
  const token: string = login.data.access_token;
  console.log(JSON.stringify({ step: "login", token_type: login.data.token_type, expires_in: login.data.expires_in }));

  const { api } = gatehouse({ origin, prefix, token });

  // Use the token.
  const me = await api.GET("/v1/me");
  if (!me.data) {
    throw failure("GET /v1/me", me.response.status, me.error);
  }
  console.log(JSON.stringify({ step: "me", email: me.data.user?.email ?? null, roles: me.data.roles, auth_method: me.data.auth_method }));

  // Make a user and a workspace.
  const user = await api.POST("/v1/users", {
    body: { email: newEmail, name: "Dev", password: "a long password", roles: ["developer"] },
  });
  if (!user.data) {
    throw failure("POST /v1/users", user.response.status, user.error);
  }
  console.log(JSON.stringify({ step: "user", id: user.data.id, email: user.data.email, roles: user.data.roles }));

  const ws = await api.POST("/v1/workspaces", { body: { name: "Foo", description: "Bar" } });
  if (!ws.data) {
    throw failure("POST /v1/workspaces", ws.response.status, ws.error);
  }
  console.log(JSON.stringify({ step: "workspace", id: ws.data.id, name: ws.data.name, owner_id: ws.data.owner_id }));

  // An error answer is typed too: the same e-mail again is a conflict.
  const again = await api.POST("/v1/users", { body: { email: newEmail, password: "a long password" } });
  if (again.response.status !== 409 || again.error?.error !== "conflict") {
    throw failure("POST /v1/users again", again.response.status, again.error);
  }
  console.log(JSON.stringify({ step: "conflict", error: again.error.error }));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
