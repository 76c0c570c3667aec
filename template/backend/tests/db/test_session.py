"""The request's session commits when the route returns and rolls back when it raises;
the tests' own transactions roll back whatever their requests committed."""

import asyncio

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.db.session import unit_of_work
from tests.probe import committed_rows, probe_router


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    app.include_router(probe_router())
    return app


def test_a_route_that_returns_commits(client: TestClient, scratch: str) -> None:
    assert client.post("/probe/parents/1").status_code == 200
    assert asyncio.run(committed_rows(scratch, "parents")) == 1


def test_a_route_that_raises_rolls_back(client: TestClient, scratch: str) -> None:
    response = client.post("/probe/parents/1/then-fail")
    assert response.status_code == 400
    assert asyncio.run(committed_rows(scratch, "parents")) == 0


def test_a_failed_commit_answers_with_its_error_not_with_the_routes_200(client: TestClient, scratch: str) -> None:
    # The duplicate passes both INSERTs (the constraint is deferred) and fails the COMMIT,
    # which runs after the route returned: the client must get the 409, never a 200.
    response = client.post("/probe/codes/abc/twice")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert asyncio.run(committed_rows(scratch, "codes")) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("attempt", [1, 2])
async def test_requests_commit_inside_the_tests_transaction(
    attempt: int, async_client: httpx2.AsyncClient, db_session: AsyncSession, scratch_tables: str
) -> None:
    # Run twice with the same id: the second run passes only if the first one's commit was undone.
    response = await async_client.post("/probe/parents/7")
    assert response.status_code == 200, response.text
    seen = await db_session.execute(text("SELECT count(*) FROM scratch.parents WHERE id = 7"))
    assert seen.scalar_one() == 1
    assert await committed_rows(scratch_tables, "parents") == 0, "the test's transaction leaked a commit"


@pytest.mark.anyio
async def test_a_conflict_undoes_only_its_own_request(
    async_client: httpx2.AsyncClient, db_session: AsyncSession, scratch_tables: str
) -> None:
    assert (await async_client.post("/probe/parents/1")).status_code == 200
    assert (await async_client.post("/probe/parents/1", params={"name": "other"})).status_code == 409
    assert (await async_client.post("/probe/children/1", params={"parent_id": 2})).status_code == 409
    assert (await async_client.post("/probe/children/1", params={"parent_id": 1})).status_code == 200
    rows = await db_session.execute(
        text("SELECT (SELECT count(*) FROM scratch.parents), count(*) FROM scratch.children")
    )
    assert tuple(rows.one()) == (1, 1)


@pytest.mark.anyio
async def test_unit_of_work_outside_requests(
    session_factory: async_sessionmaker[AsyncSession], db_session: AsyncSession, scratch_tables: str
) -> None:
    insert = text("INSERT INTO scratch.parents (id, name) VALUES (:id, :name)")
    async with unit_of_work(session_factory) as session:
        await session.execute(insert, {"id": 1, "name": "kept"})

    async def failing_job() -> None:
        async with unit_of_work(session_factory) as session:
            await session.execute(insert, {"id": 2, "name": "undone"})
            raise RuntimeError("job failed")

    with pytest.raises(RuntimeError, match="job failed"):
        await failing_job()
    names = await db_session.execute(text("SELECT name FROM scratch.parents"))
    assert names.scalars().all() == ["kept"]


def test_a_read_session_runs_each_statement_without_a_transaction_around_it(client: TestClient) -> None:
    assert client.get("/probe/one-transaction/db-session").json() is True
    assert client.get("/probe/one-transaction/read-session").json() is False


def test_a_route_that_adds_an_object_on_a_read_session_fails_and_writes_nothing(
    client: TestClient, scratch: str
) -> None:
    response = client.post("/probe/parents/1/on-read-session")
    assert response.status_code == 500
    assert asyncio.run(committed_rows(scratch, "parents")) == 0


def test_a_read_session_sees_what_requests_committed(client: TestClient, scratch: str) -> None:
    assert client.get("/probe/parents").json() == []
    assert client.post("/probe/parents/1").status_code == 200
    assert client.post("/probe/parents/2", params={"name": "second"}).status_code == 200
    assert client.get("/probe/parents").json() == [1, 2]
