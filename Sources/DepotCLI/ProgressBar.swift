import DepotCore
import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// Progress on stderr while a long call runs, fed by polling: a bar redrawn
/// with carriage returns on a terminal; off one (a log file, a pipe) a plain
/// line every few seconds, so logs hold lines, not `^M` runs; nothing with
/// `--quiet`.
enum ProgressBar {
    enum Style: Sendable { case bar, lines, quiet }

    static func style(quiet: Bool) -> Style { quiet ? .quiet : isatty(STDERR_FILENO) == 1 ? .bar : .lines }

    static func whileRunning<T: Sendable>(
        label: String, style: Style, lineEvery: Duration = .seconds(5), poll: @escaping @Sendable () async -> Double?,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard style != .quiet else { return try await work() }
        // Stopped with a flag, not Task.cancel(): cancelling the poller while its
        // HTTP request completes deadlocks FoundationNetworking (seen in the e2e
        // test that cancels a create: the CLI never exited). A poll in flight
        // just finishes; the process does not wait for it.
        let stop = CancelFlag()
        _ = Task {
            var last = -1
            var lastLine = ContinuousClock.now
            while !stop.isSet {
                try? await Task.sleep(for: .milliseconds(250))
                guard !stop.isSet, let fraction = await poll(), fraction.isFinite, !stop.isSet else { continue }
                let percent = Int(max(0, min(fraction, 1)) * 100)
                switch style {
                case .bar where percent != last:
                    draw(label: label, percent: percent)
                    last = percent
                case .lines where percent != last && ContinuousClock.now - lastLine >= lineEvery:
                    FileHandle.standardError.write(Data("\(label): \(percent)%\n".utf8))
                    last = percent
                    lastLine = .now
                default:
                    break
                }
            }
        }
        defer { stop.cancel() }
        do {
            let result = try await work()
            stop.cancel()
            if style == .bar {
                draw(label: label, percent: 100)
                FileHandle.standardError.write(Data("\n".utf8))
            } else {
                FileHandle.standardError.write(Data("\(label): done\n".utf8))
            }
            return result
        } catch {
            stop.cancel()
            if style == .bar { FileHandle.standardError.write(Data("\n".utf8)) }
            throw error
        }
    }

    static func draw(label: String, percent: Int) {
        let width = 30
        let filled = width * max(0, min(percent, 100)) / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent)%".utf8))
    }
}

extension DepotClient {
    /// Creates a volume; an eager-zeroed one shows its zeroing progress while
    /// it runs (`volume create` and `apply` alike), unless `json`.
    func createVolume(_ ref: VolumeRef, _ body: CreateVolumeRequest, json: Bool, quiet: Bool) async throws -> VolumeInfo
    {
        guard body.provisioning == .eagerZeroed, !json else { return try await createVolume(pool: ref.pool, body) }
        return try await ProgressBar.whileRunning(
            label: "zeroing \(ref)", style: ProgressBar.style(quiet: quiet),
            poll: {
                try? await self.volume(ref).progress
            }
        ) { try await self.createVolume(pool: ref.pool, body) }
    }
}
