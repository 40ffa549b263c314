import ArgumentParser
import DepotCLI

/// The `depot` executable: the command tree lives in DepotCLI so tests can
/// drive it; `@main` here gives ArgumentParser its async entry point.
@main
struct DepotMain: AsyncParsableCommand {
    static let configuration = DepotCommand.configuration
}
