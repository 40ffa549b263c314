import DepotBlock
import DepotCore
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// The device every LU of one volume serves: it forwards to the volume's
/// current backstore (its raw file, or the qcow2 image on top of its chain)
/// and can swap that backstore while initiators keep running I/O — a
/// snapshot puts a new overlay on top, a rollback another, a merge or
/// flatten a rebased image. The swap (`replace`) is invisible to initiators:
/// new commands wait while it runs, the commands in flight drain first (as
/// QEMU drains the node a blockdev-snapshot freezes), and the old backstore
/// is flushed before the new one takes over.
///
/// A swap may leave the old backstore's flush for later (`.later`: the
/// layer a snapshot freezes, whose dirty data would otherwise hold the
/// snapshot for as long as it takes to write back): it starts at once in
/// the background, and every flush of this device from then on waits for
/// it and reports its failure — so a guest's SYNCHRONIZE CACHE or FUA write
/// after the snapshot still covers every write it made before.
///
/// The fast lane passes through while no swap is pending (one lock round
/// trip each way); during a swap it declines, and the general path waits.
public final class VolumeDevice: BlockDevice, @unchecked Sendable {
    public let blockSize: Int
    /// The size LUs serve (`grow` raises it; a raw resize makes a new device).
    public var sizeBytes: UInt64 { size.load(ordering: .acquiring) }
    private let size: Synchronization.Atomic<UInt64>
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
    /// Old backstores a swap left to flush later, and the first failure of
    /// one (reported by every flush from then on: the data may be lost).
    private let laterFlushes = NIOLockedValueBox<(running: [Task<Void, Never>], failure: String?)>(([], nil))
    /// One swap at a time, in order.
    private let swaps = ChangeQueue()
    /// The flush-error latch: the first failed flush, after which every flush
    /// fails without asking the backstore again, until `clearLatch`.
    private let latch: NIOLockedValueBox<String?>
    /// Told once each time the latch trips (the catalog records it).
    private let onLatch: @Sendable (String) -> Void

    /// `latched`: a failure recorded before (the catalog's, after a restart)
    /// the device starts latched on.
    public init(
        _ device: any BlockDevice, latched: String? = nil, onLatch: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        latch = NIOLockedValueBox(latched)
        self.onLatch = onLatch
        blockSize = device.blockSize
        size = Synchronization.Atomic(device.sizeBytes)
        canUnmap = device.canUnmap
        state = NIOLockedValueBox(State(device: device))
    }

    /// The backstore serving now.
    public var current: any BlockDevice { state.withLockedValue { $0.device } }

    // MARK: Swapping

    /// When the old backstore is flushed.
    public enum OldFlush: Sendable {
        /// Before `body` runs (once while I/O still runs, once in the pause).
        case first
        /// After the swap, in the background; flushes of this device wait for
        /// it. A qcow2 backstore is closed there (flushed, reservations given
        /// back): until then its file lacks its newest tables, so `body`
        /// opens the new backstore on it in memory, and whatever opens its
        /// file first waits (`settle`).
        case later
    }

    /// Stops new commands, waits for those in flight, flushes the current
    /// backstore (`flush`), and runs `body` with it (the old one): whatever
    /// `body` returns serves from then on. If `body` throws, the old
    /// backstore serves again and the error is rethrown. The new backstore
    /// must have the same size and block size.
    public func replace(
        flush: OldFlush = .first, _ body: @Sendable (any BlockDevice) async throws -> any BlockDevice
    ) async throws {
        try await swaps.run { () async throws in try await swap(flush, body) }
    }

    private func swap(
        _ flush: OldFlush, _ body: @Sendable (any BlockDevice) async throws -> any BlockDevice
    ) async throws {
        // A first flush while I/O still runs writes back most dirty data, so
        // the one inside the pause (below) has little left: the pause, which
        // initiators see as latency, stays short.
        if flush == .first { try await current.flush() }
        await drain()
        let old = current
        var next = old
        do {
            if flush == .first { try await old.flush() }
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
        if flush == .later { flushLater(old) }
        resume(with: next)
    }

    /// Stops new commands and waits for those in flight (`resume` ends it).
    private func drain() async {
        await withCheckedContinuation { (drained: CheckedContinuation<Void, Never>) in
            let now = state.withLockedValue { s -> Bool in
                s.swapping = true
                if s.inFlight == 0 { return true }
                s.drained = drained
                return false
            }
            if now { drained.resume() }
        }
    }

    /// Grows the volume under its LUs: new commands wait, those in flight
    /// drain, `body` grows the current backstore to `newSize` (a qcow2
    /// image's header and L1 table), and the LUs see the new size (the
    /// caller then tells their sessions CAPACITY DATA HAS CHANGED). If
    /// `body` throws, the size stays.
    public func grow(to newSize: UInt64, _ body: @Sendable (any BlockDevice) async throws -> Void) async throws {
        try await swaps.run { () async throws in
            await drain()
            let device = current
            do {
                try await body(device)
                guard device.sizeBytes == newSize else {
                    throw BlockDeviceError.io("the backstore grew to \(device.sizeBytes) bytes, not \(newSize)")
                }
            } catch {
                resume(with: device)
                throw error
            }
            size.store(newSize, ordering: .releasing)
            resume(with: device)
        }
    }

    private func flushLater(_ old: any BlockDevice) {
        let task = Task {
            do {
                // A qcow2 image is closed: flushed, its unused reservations given back.
                if let image = old as? QCOW2BlockDevice { try await image.close() } else { try await old.flush() }
            } catch {
                self.laterFlushes.withLockedValue { $0.failure = $0.failure ?? "\(error)" }
            }
        }
        laterFlushes.withLockedValue { $0.running.append(task) }
    }

    /// Waits for the old backstores a swap left to flush and close later: a
    /// job about to write a layer file must not race a close of it, and a
    /// qcow2 layer's file lacks its newest tables until its flush wrote them
    /// (they are in memory, where the overlay above reads them).
    public func settle() async throws { try await awaitLaterFlushes() }

    /// Waits for the flushes swaps left for later; throws if one failed.
    private func awaitLaterFlushes() async throws {
        let running = laterFlushes.withLockedValue { $0.running }
        for task in running { await task.value }
        let failure = laterFlushes.withLockedValue { later -> String? in
            later.running.removeFirst(min(running.count, later.running.count))
            return later.failure
        }
        if let failure { throw BlockDeviceError.io("flushing a layer frozen by a snapshot: \(failure)") }
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

    /// A failed flush is never retried as if nothing happened (PostgreSQL's
    /// fsync lesson, 2018: after a failed fsync Linux may mark the dirty
    /// pages clean and report the next fsync as a success, though the data
    /// never reached the disk). The flush that saw the failure throws; the
    /// device latches, and every later flush — SYNCHRONIZE CACHE, a FUA
    /// write — throws the same without asking the backstore, until an
    /// operator who has checked the volume clears it (`clearLatch`).
    public func flush() async throws {
        if let reason = latch.withLockedValue({ $0 }) { throw BlockDeviceError.io("flush failed earlier: \(reason)") }
        do {
            // Entered first (as `flush(then:)`): the later flushes of every swap that ended are seen.
            try await serve { device in
                try await awaitLaterFlushes()
                try await device.flush()
            }
        } catch {
            trip("\(error)")
            throw error
        }
    }

    /// `flush`, reported to `done` from the thread that ended it: straight
    /// from the backstore's flush when no swap is pending and no layer a
    /// snapshot froze is still being written back (the fast lane's FUA
    /// writes); else from a task around `flush`. The latch as in `flush`.
    public func flush(then done: @escaping @Sendable ((any Error)?) -> Void) {
        if let reason = latch.withLockedValue({ $0 }) {
            return done(BlockDeviceError.io("flush failed earlier: \(reason)"))
        }
        // Entered first: a swap that ended before registered its later flush
        // before it let commands in, and none can end while this is in.
        let device = tryEnter()
        let settled = laterFlushes.withLockedValue { $0.running.isEmpty && $0.failure == nil }
        guard let device, settled else {
            if device != nil { leave() }
            Task {
                do {
                    try await flush()
                    done(nil)
                } catch {
                    done(error)
                }
            }
            return
        }
        device.flush { failure in
            self.leave()
            if let failure { self.trip("\(failure)") }
            done(failure)
        }
    }

    /// Latches on the first failed flush (and tells `onLatch` once).
    private func trip(_ reason: String) {
        let tripped = latch.withLockedValue { latch -> Bool in
            guard latch == nil else { return false }
            latch = reason
            return true
        }
        if tripped { onLatch(reason) }
    }

    /// The failure the device is latched on; nil while flushes work.
    public var latchedFailure: String? { latch.withLockedValue { $0 } }

    /// Lets flushes reach the backstore again (`depot volume clear-error`),
    /// forgetting a failed flush of a layer a snapshot froze as well.
    public func clearLatch() {
        latch.withLockedValue { $0 = nil }
        laterFlushes.withLockedValue { $0.failure = nil }
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
