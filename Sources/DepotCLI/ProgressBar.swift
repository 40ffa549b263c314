import Foundation

/// A progress bar on stderr while a long call runs, fed by polling.
enum ProgressBar {
    static func whileRunning<T: Sendable>(
        label: String, poll: @escaping @Sendable () async -> Double?, _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let drawer = Task {
            var last = -1
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                guard !Task.isCancelled, let fraction = await poll() else { continue }
                let percent = Int(fraction * 100)
                if percent != last {
                    draw(label: label, percent: percent)
                    last = percent
                }
            }
        }
        defer { drawer.cancel() }
        do {
            let result = try await work()
            drawer.cancel()
            draw(label: label, percent: 100)
            FileHandle.standardError.write(Data("\n".utf8))
            return result
        } catch {
            drawer.cancel()
            FileHandle.standardError.write(Data("\n".utf8))
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
