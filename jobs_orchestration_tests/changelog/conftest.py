import pytest

from jobs_orchestration_tests.support.changelog import TopicSubscriber, seed_platform


@pytest.fixture
def seeded_db(platform_db):
    """The platform database with an organization, a user and a dataset to attach events to."""
    with platform_db.begin() as connection:
        seed_platform(connection)
    return platform_db


@pytest.fixture
def subscriber(local_aws):
    return TopicSubscriber(local_aws)


@pytest.fixture
def sns_client(local_aws):
    return local_aws.client("sns")
