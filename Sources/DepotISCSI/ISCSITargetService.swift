import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The iSCSI listener: one server socket per portal, one task per
/// connection; a failing connection never takes down another.
public struct ISCSITargetService: Service {
    public struct Portal: Sendable {
        public var host: String
        public var port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    let directory: TargetDirectory
    let portals: [Portal]
    let logger: Logger
    let onBound: @Sendable ([String]) async -> Void
    let keepalive: Keepalive

    public init(
        directory: TargetDirectory, portals: [Portal], logger: Logger, keepalive: Keepalive = Keepalive(),
        onBound: @escaping @Sendable ([String]) async -> Void = { _ in }
    ) {
        self.directory = directory
        self.portals = portals
        self.logger = logger
        self.keepalive = keepalive
        self.onBound = onBound
    }

    public func run() async throws {
        var servers: [NIOAsyncChannel<Accepted, Never>] = []
        var addresses: [String] = []
        for (index, portal) in portals.enumerated() {
            let portalGroup = UInt16(truncatingIfNeeded: index + 1)
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                // The fast lane answers reads while the channel is writable: up to 4 MiB
                // queued per connection (QD16 of 256 KiB), then reads wait their turn in
                // the general path, whose large answers wait until written.
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
                .bind(host: portal.host, port: portal.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        // The connection is made on its event loop and is the channel's
                        // inbound handler: its state never leaves that loop.
                        let connection = self.connection(on: channel, portalGroup: portalGroup)
                        // A peer that sends without reading its answers (rejects,
                        // NOP-Ins, responses) is not read from while 4 MiB of answers
                        // wait for it: the answers queued per connection stay bounded.
                        try channel.pipeline.syncOperations.addHandler(BackPressureHandler())
                        try channel.pipeline.syncOperations.addHandler(connection)
                        return Accepted(
                            channel: try NIOAsyncChannel<ISCSIFrame, ByteBuffer>(wrappingChannelSynchronously: channel),
                            connection: NIOLoopBound(connection, eventLoop: channel.eventLoop))
                    }
                }
            let port = server.channel.localAddress?.port ?? portal.port
            addresses.append(portal.host.contains(":") ? "[\(portal.host)]:\(port)" : "\(portal.host):\(port)")
            servers.append(server)
        }
        logger.info("iSCSI portals listening", metadata: ["portals": "\(addresses)"])
        directory.setPortals(addresses)
        await onBound(addresses)
        let listeners = servers
        // On graceful shutdown, sessions are first asked to log out (Async
        // Message, RFC 7143 §11.9.1) so initiators can finish cleanly.
        let directory = self.directory
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.serve(listeners) }
            group.addTask {
                guard (try? await gracefulShutdown()) != nil else { return }
                let asked = await directory.sessions.logoutAll(within: 2)
                if asked > 0 {
                    logger.info("asked sessions to log out before shutdown", metadata: ["sessions": "\(asked)"])
                }
            }
            _ = await group.next()
            group.cancelAll()
        }
    }

    private func serve(_ listeners: [NIOAsyncChannel<Accepted, Never>]) async throws {
        do {
            try await withThrowingDiscardingTaskGroup { group in
                for server in listeners {
                    group.addTask {
                        try await server.executeThenClose { inbound in
                            try await withThrowingDiscardingTaskGroup { connections in
                                for try await connection in inbound {
                                    connections.addTask { await self.serve(connection) }
                                }
                            }
                        }
                    }
                }
            }
        } catch is CancellationError {}
    }

    /// A new connection: its channel, and the connection handling it, which
    /// belongs to the channel's event loop (not Sendable).
    struct Accepted: Sendable {
        let channel: NIOAsyncChannel<ISCSIFrame, ByteBuffer>
        let connection: NIOLoopBound<ISCSIConnection>
    }

    /// Called on the new channel's event loop.
    private func connection(on channel: any Channel, portalGroup: UInt16) -> ISCSIConnection {
        var log = logger
        log[metadataKey: "peer"] = "\(channel.remoteAddress?.description ?? "?")"
        return ISCSIConnection(
            directory: directory, tsih: directory.sessions.nextTSIH(), logger: log, channel: channel,
            localAddress: channel.localAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?",
            portalGroup: portalGroup,
            peerAddress: channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?",
            keepalive: keepalive)
    }

    func serve(_ accepted: Accepted) async {
        let channel = accepted.channel
        let loop = channel.channel.eventLoop
        let peer = "\(channel.channel.remoteAddress?.description ?? "?")"
        do {
            try await channel.executeThenClose { inbound, _ in
                var closing = inbound.makeAsyncIterator()
                // On the connection's event loop from here on (executor preference).
                try await withTaskExecutorPreference(EventLoopTaskExecutor(loop)) {
                    let connection = accepted.connection.value
                    defer { directory.sessions.remove(connection.sessionID) }
                    try await connection.run(until: &closing)
                }
            }
        } catch {
            var log = logger
            log[metadataKey: "peer"] = "\(peer)"
            log.info("iSCSI connection closed", metadata: ["reason": "\(error)"])
        }
    }
}
