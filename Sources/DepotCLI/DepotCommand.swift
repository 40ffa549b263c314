import ArgumentParser
import DepotCore
import Foundation

/// `depot`: the administrator's command line over depotd's REST API.
public struct DepotCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "depot",
        abstract: "Manage a Depot datastore server: pools, volumes, capacity.",
        version: DepotVersion.current,
        subcommands: [
            PoolCommand.self, VolumeCommand.self, SnapshotCommand.self, JobCommand.self, TargetCommand.self,
            SessionCommand.self, ExportCommand.self, TokenCommand.self, AuditCommand.self,
            CapacityCommand.self, ApplyCommand.self,
            StatusCommand.self, VersionCommand.self, HelpAllCommand.self,
        ])

    public init() {}
}

/// Runs a subcommand body, turning API and client failures into
/// `error: MESSAGE` on stderr and exit status 1 — or, with `--json`, into
/// `{"error":{"code":…,"message":…,"status":…}}` on stderr, so a script
/// reading JSON gets JSON for failures too.
func reportingFailures(json: Bool = false, _ body: () async throws -> Void) async throws {
    func fail(code: String, message: String, status: Int?) -> ExitCode {
        if json {
            struct Body: Encodable {
                var code: String
                var message: String
                var status: Int?
            }
            struct Wrapper: Encodable { var error: Body }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let data =
                (try? encoder.encode(Wrapper(error: Body(code: code, message: message, status: status)))) ?? Data()
            FileHandle.standardError.write(data + Data("\n".utf8))
        } else {
            FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        }
        return ExitCode(1)
    }
    do {
        try await body()
    } catch let failure as DepotClient.Failure {
        throw fail(code: failure.code, message: failure.message, status: failure.status)
    } catch let failure as CLIFailure {
        throw fail(code: "client", message: failure.description, status: nil)
    } catch let error as DepotError {
        throw fail(code: error.code.rawValue, message: error.message, status: nil)
    }
}

/// Parses a size option, as a validation error naming the option.
func parseSize(_ text: String, option: String) throws -> UInt64 {
    do { return try ByteSize.parse(text) } catch { throw ValidationError("\(option): \(error.message)") }
}

func parseVolumeRef(_ text: String) throws -> VolumeRef {
    do { return try VolumeRef(parsing: text) } catch { throw ValidationError(error.message) }
}

func validateIQN(_ text: String) throws {
    do { _ = try ISCSIName.validate(text) } catch { throw ValidationError(error.message) }
}

func validateName(_ text: String, kind: String) throws {
    do { try ObjectName.validate(text, kind: kind) } catch { throw ValidationError(error.message) }
}
