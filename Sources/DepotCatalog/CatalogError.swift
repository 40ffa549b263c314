import DepotCore
import GRDB

extension DepotError {
    /// The one translation of catalog failures, for every catalog call: a
    /// `DepotError` (a rule a typed method enforces) passes through, a
    /// violated SQLite constraint is a conflict, anything else (I/O,
    /// decoding) an internal error naming the catalog.
    public static func fromCatalog<T>(_ body: () throws -> T) throws(DepotError) -> T {
        do {
            return try body()
        } catch let error as DepotError {
            throw error
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CONSTRAINT {
            throw .conflict("catalog constraint: \(error.message ?? "\(error)")")
        } catch {
            throw .internalError("catalog error: \(error)")
        }
    }
}
