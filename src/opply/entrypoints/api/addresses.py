"""The customer's address book: where their orders can go."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide
from flask.views import MethodView
from flask_smorest import Blueprint

from opply.application.addresses import (
    AddAddress,
    DeleteAddress,
    GetMyAddress,
    ListMyAddresses,
    UpdateAddress,
)
from opply.application.dto import NewAddress
from opply.domain.errors import (
    AddressBookFull,
    AddressNotFound,
    DefaultAddressRequired,
    InvalidAddress,
    InvalidCountry,
)
from opply.entrypoints.api.operations import operation
from opply.entrypoints.api.schemas import (
    ADDRESS_ID,
    MAX_ID,
    AddressCreateSchema,
    AddressListSchema,
    AddressPatchSchema,
    AddressSchema,
    ListEnvelope,
)
from opply.entrypoints.api.security import authenticated, current_principal
from opply.entrypoints.container import Container

blp = Blueprint(
    "addresses",
    __name__,
    url_prefix="/api/v1/me/addresses",
    description="Your address book: where your orders go",
)

ADDRESS_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "label": "Warehouse",
    "recipient": "Jane Baker",
    "company": "Baker & Co",
    "line1": "12 Mill Lane",
    "line2": "",
    "postal_code": "EC1A 1BB",
    "city": "London",
    "country": "GB",
    "phone": "+44 20 7946 0000",
    "is_default": True,
}

list_my_addresses: ListMyAddresses = Provide[Container.list_my_addresses]
get_my_address: GetMyAddress = Provide[Container.get_my_address]
add_address: AddAddress = Provide[Container.add_address]
update_address: UpdateAddress = Provide[Container.update_address]
delete_address: DeleteAddress = Provide[Container.delete_address]


@blp.route("/")
class Addresses(MethodView):
    @authenticated
    @blp.response(200, AddressListSchema, example={"results": [ADDRESS_EXAMPLE]})
    @operation("listAddresses")
    def get(self) -> Any:
        """List your addresses

        The default first, then newest first; at most 20."""
        return ListEnvelope(results=list_my_addresses(current_principal().user_id))

    @authenticated  # before parsing: no body details for the unauthorised
    @blp.arguments(
        AddressCreateSchema(),
        example={k: v for k, v in ADDRESS_EXAMPLE.items() if k != "id"},
    )
    @blp.response(201, AddressSchema, example=ADDRESS_EXAMPLE, headers={"Location": "Location"})
    @operation(
        "addAddress",
        AddressBookFull,
        InvalidCountry,
        InvalidAddress,
        links={
            201: {
                target: {"address_id": "$response.body#/id"}
                for target in ("getAddress", "updateAddress", "deleteAddress")
            }
        },
    )
    def post(self, body: dict[str, Any]) -> Any:
        """Add an address

        The first one is the default; `is_default: true` makes a later one the default. A
        21st is a 409 `address_book_full`; a country that does not exist a 422
        `invalid_country`."""
        address = add_address(current_principal().user_id, NewAddress(**body))
        return address, 201, {"Location": f"/api/v1/me/addresses/{address.id}/"}


@blp.route(f"/<int(min=1, max={MAX_ID}):address_id>/", parameters=ADDRESS_ID)
class AddressDetail(MethodView):
    @authenticated
    @blp.response(200, AddressSchema, example=ADDRESS_EXAMPLE)
    @operation("getAddress", AddressNotFound)
    def get(self, address_id: int) -> Any:
        """Get one of your addresses

        Another customer's address is a 404, exactly like a missing one."""
        return get_my_address(current_principal().user_id, address_id)

    @authenticated  # before parsing: no body details for the unauthorised
    @blp.arguments(AddressPatchSchema(), example={"is_default": True})
    @blp.response(200, AddressSchema, example=ADDRESS_EXAMPLE)
    @operation(
        "updateAddress",
        AddressNotFound,
        DefaultAddressRequired,
        InvalidCountry,
        InvalidAddress,
    )
    def patch(self, body: dict[str, Any], address_id: int) -> Any:
        """Change any of an address's fields but its id

        `is_default: true` moves the default here; `is_default: false` on the default is a
        422 `default_address_required` (make another one the default instead). Orders already
        placed keep the address they were placed with."""
        return update_address(current_principal().user_id, address_id, body)

    @authenticated
    @blp.response(204)
    @operation("deleteAddress", AddressNotFound)
    def delete(self, address_id: int) -> None:
        """Delete one of your addresses

        Orders already placed keep their copy. Deleting the default makes the most recently
        added address left the default."""
        delete_address(current_principal().user_id, address_id)
