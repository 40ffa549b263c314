import DepotCore
import GRDB

extension DepotError {
    /// The one translation of catalog failures, for every catalog call: a
    /// `DepotError` (a rule a typed method enforces) passes through, a
    /// violated SQLite constraint is a conflict, anything else (I/O,
    /// decoding) an internal error naming the catalog.
    public static func fromCatalog(_ error: any Error) -> DepotError {
        switch error {
        case let error as DepotError: error
        case let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT:
            .conflict("catalog constraint: \(error.message ?? "\(error)")")
        default: .internalError("catalog error: \(error)")
        }
    }
}
