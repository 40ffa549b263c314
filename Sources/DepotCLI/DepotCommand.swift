import ArgumentParser
import DepotCore
import Foundation

/// `depot`: the administrator's command line over depotd's REST API.
public struct DepotCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "depot",
        abstract: "Manage a Depot datastore server: pools, volumes, capacity.",
        subcommands: [PoolCommand.self, VolumeCommand.self, TargetCommand.self, SessionCommand.self, ExportCommand.self, CapacityCommand.self, ApplyCommand.self])

    public init() {}
}

/// Runs a subcommand body, turning API and client failures into
/// `error: MESSAGE` on stderr and exit status 1.
func reportingFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let failure as DepotClient.Failure {
        FileHandle.standardError.write(Data("error: \(failure.message)\n".utf8))
        throw ExitCode(1)
    } catch let failure as CLIFailure {
        FileHandle.standardError.write(Data("error: \(failure.description)\n".utf8))
        throw ExitCode(1)
    } catch let error as DepotError {
        FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
        throw ExitCode(1)
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
