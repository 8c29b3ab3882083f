import { JumpstarterClient, type JumpstarterClientOptions } from "../../src/index.js";
import type { MockController } from "../../src/testing/index.js";

/** Opens SDK clients on the current mock controller and closes all of them after a test. */
export class ClientPool {
  readonly #clients: JumpstarterClient[] = [];

  /** `mock` returns the controller in use, which a test may replace. */
  constructor(private readonly mock: () => MockController) {}

  /** Opens a client of the mock's default client, with `overrides` applied. */
  open(overrides: Partial<JumpstarterClientOptions> = {}): JumpstarterClient {
    const mock = this.mock();
    const client = new JumpstarterClient({
      endpoint: mock.endpoint,
      namespace: mock.namespace,
      token: mock.token,
      clientName: mock.clientName,
      ...overrides,
    });
    this.#clients.push(client);
    return client;
  }

  /** Opens a client that authenticates as `clientName`, another client of the mock's namespace. */
  async openAs(clientName: string, overrides: Partial<JumpstarterClientOptions> = {}): Promise<JumpstarterClient> {
    const token = await this.mock().issueToken({ clientName });
    return this.open({ token, clientName, ...overrides });
  }

  /** Closes every client opened so far. */
  async closeAll(): Promise<void> {
    for (const client of this.#clients.splice(0)) await client.close();
  }
}
