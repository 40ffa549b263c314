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

    public init(directory: TargetDirectory, portals: [Portal], logger: Logger, onBound: @escaping @Sendable ([String]) async -> Void = { _ in }) {
        self.directory = directory
        self.portals = portals
        self.logger = logger
        self.onBound = onBound
    }

    public func run() async throws {
        var servers: [NIOAsyncChannel<NIOAsyncChannel<ISCSIPDU, ISCSIPDU>, Never>] = []
        var addresses: [String] = []
        for portal in portals {
            let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: portal.host, port: portal.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ByteToMessageHandler(ISCSIFrameDecoder(maxDataSegmentLength: NegotiatedParameters.targetMaxRecvDataSegmentLength)))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(ISCSIFrameEncoder()))
                        return try NIOAsyncChannel<ISCSIPDU, ISCSIPDU>(wrappingChannelSynchronously: channel)
                    }
                }
            let port = server.channel.localAddress?.port ?? portal.port
            addresses.append(portal.host.contains(":") ? "[\(portal.host)]:\(port)" : "\(portal.host):\(port)")
            servers.append(server)
        }
        logger.info("iSCSI portals listening", metadata: ["portals": "\(addresses)"])
        await onBound(addresses)
        let advertised = addresses
        let listeners = servers
        try? await cancelWhenGracefulShutdown {
            try await withThrowingDiscardingTaskGroup { group in
                for server in listeners {
                    group.addTask {
                        try await server.executeThenClose { inbound in
                            try await withThrowingDiscardingTaskGroup { connections in
                                var tsih: UInt16 = 0
                                for try await connection in inbound {
                                    tsih = tsih &+ 1 == 0 ? 1 : tsih &+ 1
                                    let sessionHandle = tsih
                                    connections.addTask {
                                        await self.serve(connection, tsih: sessionHandle, portals: advertised)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func serve(_ channel: NIOAsyncChannel<ISCSIPDU, ISCSIPDU>, tsih: UInt16, portals: [String]) async {
        let peer = "\(channel.channel.remoteAddress?.description ?? "?")"
        var log = logger
        log[metadataKey: "peer"] = "\(peer)"
        do {
            try await channel.executeThenClose { inbound, outbound in
                var iterator = inbound.makeAsyncIterator()
                let connection = ISCSIConnection(directory: directory, portals: portals, tsih: tsih, logger: log)
                defer { connection.releaseNexus() }
                try await connection.run(inbound: &iterator, outbound: outbound)
            }
        } catch {
            log.info("iSCSI connection closed", metadata: ["reason": "\(error)"])
        }
    }
}
