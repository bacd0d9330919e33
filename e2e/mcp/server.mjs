// A tiny MCP server (streamable HTTP, stateless) with one tool, built with
// the official SDK. It sits behind Gatehouse's gateway, which adds the
// identity headers; the tool answers who called it. Prints its address,
// and a line for each call of the tool.
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";

const httpServer = http.createServer(async (req, res) => {
  if (new URL(req.url, "http://x").pathname !== "/mcp") {
    res.writeHead(404).end();
    return;
  }
  const who = req.headers["x-gatehouse-user-email"] || "";
  const server = new McpServer({ name: "gatehouse-e2e", version: "1.0.0" });
  server.registerTool("whoami", { description: "Says which user the gateway let in" }, async () => {
    console.log(JSON.stringify({ called: who }));
    return { content: [{ type: "text", text: `hello ${who}` }] };
  });
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined });
  res.on("close", () => {
    transport.close();
    server.close();
  });
  await server.connect(transport);
  await transport.handleRequest(req, res);
});
httpServer.listen(0, "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: httpServer.address().port }));
});
