import DepotCore
import Hummingbird

extension TokenList: ResponseEncodable {}
extension CreatedToken: ResponseEncodable {}

/// `/v1/tokens`: named API tokens (admin only).
struct TokenRoutes {
    let tokens: TokenStore

    func register(on group: RouterGroup<DepotRequestContext>) {
        group.get("tokens") { _, _ -> TokenList in TokenList(tokens: tokens.list()) }
        group.post("tokens") { request, context -> EditedResponse<CreatedToken> in
            let body = try await request.decode(as: CreateTokenRequest.self, context: context)
            return EditedResponse(status: .created, response: try await tokens.create(body))
        }
        group.delete("tokens/:name") { _, context -> Response in
            try await tokens.revoke(try context.parameters.decoded("name"))
            return Response(status: .noContent)
        }
    }
}
