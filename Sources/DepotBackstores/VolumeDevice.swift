import DepotBlock
import DepotCore
import NIOConcurrencyHelpers
import NIOCore

/// The device every LU of one volume serves: it forwards to the volume's
/// current backstore (its raw file, or the qcow2 image on top of its chain)
/// and can swap that backstore while initiators keep running I/O — a
/// snapshot puts a new overlay on top, a rollback another, a merge or
/// flatten a rebased image. The swap (`replace`) is invisible to initiators:
/// new commands wait while it runs, the commands in flight drain first, and
/// the old backstore is flushed before the new one takes over (as QEMU's
/// blockdev-snapshot drains and flushes the node it freezes).
///
/// The fast lane passes through while no swap is pending (one lock round
/// trip each way); during a swap it declines, and the general path waits.
public final class VolumeDevice: BlockDevice, @unchecked Sendable {
    public let blockSize: Int
    public let sizeBytes: UInt64
    public let canUnmap: Bool

    private struct State {
        var device: any BlockDevice
        var inFlight = 0
        /// A swap is waiting for the commands in flight, or running.
        var swapping = false
        var drained: CheckedContinuation<Void, Never>?
        var waiting: [CheckedContinuation<Void, Never>] = []
    }

    private let state: NIOLockedValueBox<State>
    /// One swap at a time, in order.
    private let swaps = ChangeQueue()

    public init(_ device: any BlockDevice) {
        blockSize = device.blockSize
        sizeBytes = device.sizeBytes
        canUnmap = device.canUnmap
        state = NIOLockedValueBox(State(device: device))
    }

    /// The backstore serving now.
    public var current: any BlockDevice { state.withLockedValue { $0.device } }

    // MARK: Swapping

    /// Stops new commands, waits for those in flight, flushes the current
    /// backstore, and runs `body` with it (the old one): whatever `body`
    /// returns serves from then on. If `body` throws, the old backstore
    /// serves again and the error is rethrown. The new backstore must have
    /// the same size and block size.
    public func replace(_ body: @Sendable (any BlockDevice) async throws -> any BlockDevice) async throws {
        try await swaps.run { () async throws in try await swap(body) }
    }

    private func swap(_ body: @Sendable (any BlockDevice) async throws -> any BlockDevice) async throws {
        // A first flush while I/O still runs writes back most dirty data, so
        // the one inside the pause (below) has little left: the pause, which
        // initiators see as latency, stays short.
        try await current.flush()
        await withCheckedContinuation { (drained: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { s -> Bool in
                s.swapping = true
                if s.inFlight == 0 { return true }
                s.drained = drained
                return false
            }
            if now { drained.resume() }
        }
        let old = current
        var next = old
        do {
            try await old.flush()
            next = try await body(old)
            guard next.sizeBytes == sizeBytes, next.blockSize == blockSize else {
                throw BlockDeviceError.io(
                    "the new backstore has \(next.sizeBytes) bytes in \(next.blockSize)-byte blocks, not \(sizeBytes) in \(blockSize)"
                )
            }
        } catch {
            resume(with: old)
            throw error
        }
        resume(with: next)
    }

    private func resume(with device: any BlockDevice) {
        let waiting = state.withLockedValue { s -> [CheckedContinuation<Void, Never>] in
            s.device = device
            s.swapping = false
            defer { s.waiting = [] }
            return s.waiting
        }
        for waiter in waiting { waiter.resume() }
    }

    // MARK: Entering and leaving

    private func enter() async -> any BlockDevice {
        while true {
            if let device = tryEnter() { return device }
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { s -> Bool in
                    if !s.swapping { return true }
                    s.waiting.append(waiter)
                    return false
                }
                if now { waiter.resume() }
            }
        }
    }

    private func tryEnter() -> (any BlockDevice)? {
        state.withLockedValue { s -> (any BlockDevice)? in
            guard !s.swapping else { return nil }
            s.inFlight += 1
            return s.device
        }
    }

    private func leave() {
        let drained = state.withLockedValue { s -> CheckedContinuation<Void, Never>? in
            s.inFlight -= 1
            guard s.inFlight == 0, let drained = s.drained else { return nil }
            s.drained = nil
            return drained
        }
        drained?.resume()
    }

    private func serve<T>(_ body: (any BlockDevice) async throws -> T) async throws -> T {
        let device = await enter()
        defer { leave() }
        return try await body(device)
    }

    // MARK: BlockDevice

    public func read(offset: UInt64, length: Int) async throws -> [UInt8] {
        try await serve { try await $0.read(offset: offset, length: length) }
    }

    public func readBuffer(offset: UInt64, length: Int) async throws -> ByteBuffer {
        try await serve { try await $0.readBuffer(offset: offset, length: length) }
    }

    public func write(offset: UInt64, bytes: [UInt8]) async throws {
        try await serve { try await $0.write(offset: offset, bytes: bytes) }
    }

    public func readNow(offset: UInt64, into: UnsafeMutableRawBufferPointer) -> Bool {
        guard let device = tryEnter() else { return false }
        defer { leave() }
        return device.readNow(offset: offset, into: into)
    }

    public func writeNow(offset: UInt64, from: UnsafeRawBufferPointer) -> Bool {
        guard let device = tryEnter() else { return false }
        defer { leave() }
        return device.writeNow(offset: offset, from: from)
    }

    public func flush() async throws {
        try await serve { try await $0.flush() }
    }

    public func unmap(offset: UInt64, length: UInt64) async throws {
        try await serve { try await $0.unmap(offset: offset, length: length) }
    }

    public func anchor(offset: UInt64, length: UInt64) async throws {
        try await serve { try await $0.anchor(offset: offset, length: length) }
    }

    public func allocation(at offset: UInt64) async throws -> (mapped: Bool, length: UInt64) {
        try await serve { try await $0.allocation(at: offset) }
    }
}
