from __future__ import annotations

from curation.celery import app


def test_cpu_and_gpu_queues_do_not_share_a_route() -> None:
    queues = app.amqp.queues
    assert (queues["cpu"].exchange.name, queues["cpu"].routing_key) == ("cpu", "cpu")
    assert (queues["gpu"].exchange.name, queues["gpu"].routing_key) == ("gpu", "gpu")
    route = app.amqp.router.route({"queue": "gpu"}, "pipelines.tasks.run_batch")
    assert route["queue"].name == "gpu" and route["queue"].routing_key == "gpu"
