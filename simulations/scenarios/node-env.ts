/*
 * How the scenario tells a node where to listen: environment overrides (BEELDNET_<SECTION>_<KEY>),
 * so the node's config file stays as `init` wrote it and `beeldnet node start` on the same
 * directory still works by itself.
 */

/** What a node of the local network listens on for libp2p: loopback, one fixed TCP port. */
export function loopbackMultiaddrs (port: number): string[] {
  return [`/ip4/127.0.0.1/tcp/${port}`]
}

export interface NodeEnvInit {
  /** the HTTP API port (0: a free one) */
  httpPort: number
  /** where the registry listens now: it may have another port than at enrolment */
  registryUrl: string
  pollIntervalSeconds: number
  /** the multiaddrs this node enrolled with: the directory tells peers to dial exactly these */
  p2pListen: string[]
  /** runs the DIMSE service on this port, accepting calls from AE title PACS (npm start) */
  dimsePort?: number
}

export function nodeEnv (base: NodeJS.ProcessEnv, init: NodeEnvInit): NodeJS.ProcessEnv {
  return {
    ...base,
    BEELDNET_HTTP_PORT: String(init.httpPort),
    BEELDNET_REGISTRY_URL: init.registryUrl,
    BEELDNET_REGISTRY_POLL_INTERVAL_SECONDS: String(init.pollIntervalSeconds),
    // The one place the libp2p listen addresses reach the node (p2p.listen, comma-separated).
    BEELDNET_P2P_LISTEN: init.p2pListen.join(','),
    ...(init.dimsePort === undefined ? {} : { BEELDNET_DIMSE_ENABLED: 'true', BEELDNET_DIMSE_PORT: String(init.dimsePort), BEELDNET_DIMSE_ACCEPT_CALLING: 'PACS' })
  }
}
