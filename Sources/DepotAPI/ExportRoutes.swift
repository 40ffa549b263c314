import DepotCore
import DepotExports
import DepotStorage
import Hummingbird

extension ExportInfo: ResponseEncodable {}
extension ExportList: ResponseEncodable {}
extension PublishReport: ResponseEncodable {}

/// `/v1/exports`: NFS exports of pools.
struct ExportRoutes {
    let exports: ExportManager

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("exports") { _, _ -> ExportList in
            ExportList(exports: try await exports.list())
        }
        group.post("exports") { request, context -> EditedResponse<ExportInfo> in
            let body = try await request.decode(as: CreateExportRequest.self, context: context)
            return EditedResponse(status: .created, response: try await exports.create(body))
        }
        group.post("exports/publish") { _, _ -> PublishReport in
            try await exports.publishAll()
        }
        group.get("exports/:pool") { _, context -> ExportInfo in
            try await exports.show(try context.parameters.decoded("pool"))
        }
        group.put("exports/:pool") { request, context -> ExportInfo in
            let body = try await request.decode(as: UpdateExportRequest.self, context: context)
            let pool = try context.parameters.decoded("pool")
            if let named = body.pool, named != pool {
                // Body against path, which no schema can say: 422.
                throw DepotError.unprocessable("the body names pool '\(named)', the path '\(pool)'")
            }
            return try await exports.update(CreateExportRequest(pool: pool, rules: body.rules, force: body.force))
        }
        group.delete("exports/:pool") { _, context -> Response in
            try await exports.delete(try context.parameters.decoded("pool"))
            return Response(status: .noContent)
        }
        group.get("exports/:pool/render") { request, context -> Response in
            let formatText = request.uri.queryParameters.get("format").map { String($0) } ?? "exports"
            guard let format = ExportManager.Format(rawValue: formatText) else {
                throw DepotError.invalidArgument("format must be exports or ganesha, got '\(formatText)'")
            }
            let text = try await exports.render(try context.parameters.decoded("pool"), format: format)
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}
